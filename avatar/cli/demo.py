"""`avatar demo --out DIR`: the whole product on a throwaway instance (see avatar/demo/chain.py)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import click

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@click.command("demo")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="New or empty folder for the throwaway instance, the outputs and report.json.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, exists=True), envvar="AVATAR_SHARED_DATA",
              default=str(DEFAULT_DATA) if DEFAULT_DATA.is_dir() else None,
              help="The shared test data (default: ../shared/data next to the checkout).")
def demo_command(out_dir: str, data_dir: str | None):
    """Enroll a walk-in person (assisted), approve, generate a short labeled clip, verify it,
    withdraw consent; writes the clip, its Content Credentials (as JSON) and a JSON report into OUT."""
    from avatar.demo.browser import DemoError
    from avatar.demo.chain import run_demo

    if data_dir is None:
        raise click.ClickException("give --data (the shared test data folder) or set AVATAR_SHARED_DATA")
    # the demo's instance is its own: none of the caller's AVATAR_* settings may leak into it
    saved = {k: os.environ.pop(k) for k in [k for k in os.environ if k.startswith("AVATAR_")]}
    try:
        report = run_demo(Path(out_dir), Path(data_dir), log=lambda m: click.echo(m, err=True))
    except DemoError as exc:
        raise click.ClickException(f"demo failed at {exc} (see {Path(out_dir) / 'report.json'})") from exc
    finally:
        os.environ.update(saved)
    click.echo(json.dumps({"ok": report["ok"], "report": str(Path(out_dir) / "report.json"),
                           "outputs": report["outputs"]}, indent=2))


COMMANDS = [demo_command]
