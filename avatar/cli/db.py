"""`avatar db`: the database schema."""
from __future__ import annotations

import click

from avatar.cli.common import services


@click.group()
def db():
    """Database schema commands."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str):
    """Applies migrations up to REVISION (default: head)."""
    from avatar.store.migrate import upgrade

    svc = services()
    upgrade(svc.config.DATABASE_URL, revision)
    click.echo(f"database at {revision}")


@db.command("current")
def db_current():
    """Prints the database's migration revision."""
    from avatar.store.migrate import current

    click.echo(current(services().config.DATABASE_URL) or "(empty)")


COMMANDS = [db]
