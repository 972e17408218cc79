"""`avatar jobs status`: when each periodic job (consent expiry, retention purge, orphan sweep) last
succeeded, for operators and monitoring. Exit 0 when every one succeeded within two of its periods,
1 when one is late (or has never run: no server or worker is running the schedule)."""
from __future__ import annotations

import json
import sys

import click


@click.group("jobs")
def jobs_group():
    """Background jobs."""


@jobs_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def jobs_status(as_json: bool):
    """When each periodic job last succeeded and failed, and when it is next due."""
    import sqlalchemy as sa

    from avatar.cli.common import services
    from avatar.jobs.periodic import LATE_AFTER_PERIODS, periodic_status

    svc = services()
    try:
        rows = periodic_status(svc)
    except sa.exc.SQLAlchemyError as exc:
        raise click.ClickException(f"cannot read the jobs from the database ({type(exc).__name__}): is it "
                                   "reachable, and upgraded (`avatar db upgrade`)?") from exc
    finally:
        svc.close()
    late = [r["name"] for r in rows if r["late"]]
    if as_json:
        click.echo(json.dumps({"periodic": rows, "late": late}, indent=2))
    else:
        for r in rows:
            click.echo(f"{r['name']:<22} every {r['every_seconds'] // 60:>4} min  "
                       f"last success {r['last_succeeded_at'] or 'never'}  next due {r['next_due_at'] or '-'}"
                       f"{'  LATE' if r['late'] else ''}")
            if r["last_failed_at"]:
                click.echo(f"{'':<22} last failure {r['last_failed_at']}: {r['last_error']}")
    if late:
        click.echo(f"late (no success within {LATE_AFTER_PERIODS} periods): {', '.join(late)}; periodic jobs run "
                   "in `avatar serve` (embedded job threads) or `avatar worker` (Celery): is one running?", err=True)
    sys.exit(1 if late else 0)


COMMANDS = [jobs_group]
