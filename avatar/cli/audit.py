"""`avatar audit`: the hash-chained audit trail."""
from __future__ import annotations

import json
import sys

import click

from avatar.cli.common import services


@click.group()
def audit():
    """Audit trail commands."""


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def audit_verify(as_json: bool):
    """Walks the hash chain; exits 1 naming the first broken event."""
    from avatar.store.audit import verify_chain

    report = verify_chain(services().db)
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    elif report.ok:
        click.echo(f"audit chain ok: {report.events} events")
    else:
        click.echo(f"audit chain BROKEN at event id {report.first_broken_id} (seq {report.first_broken_seq}): "
                   f"{report.reason}", err=True)
    sys.exit(0 if report.ok else 1)


COMMANDS = [audit]
