"""`avatar verify FILE`: was this file generated here, by which generation, is it revoked, and
do its Content Credentials hold? Exit 0 when generated here, 3 when not, 2 on unreadable input."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_command(file: str, as_json: bool):
    """Check FILE for our watermark, Content Credentials and AIGC label."""
    from avatar.cli.common import services
    from avatar.domain.verification import verify

    data = Path(file).read_bytes()
    svc = services()
    try:
        with svc.db.session_scope() as s:
            report = verify(s, data, svc.watermark_key, svc.content_credentials.anchors_pem, svc.label_keys())
    finally:
        svc.close()
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        click.echo(report["finding"])
        cc, label = report["content_credentials"] or {}, report["aigc_label"]
        click.echo(f"generated here: {'yes' if report['generated'] else 'no'}; generation {report['generation_id']}; "
                   f"Content Credentials {cc.get('state') or 'none'}{' (ours)' if cc.get('ours') else ''}; "
                   f"AIGC label {('bound to the content' if label['bound'] else 'not bound') if label['present'] else 'none'}; "
                   f"{'REVOKED' if report['revoked'] else 'not revoked'}")
    if "error" in report:
        click.echo(f"error: {report['error']}", err=True)
        sys.exit(2)
    sys.exit(0 if report["generated"] else 3)


COMMANDS = [verify_command]
