"""`avatar admin`: accounts created from the command line."""
from __future__ import annotations

import os

import click

from avatar.cli.common import services


@click.group()
def admin():
    """Account administration."""


@admin.command("create")
@click.option("--email", required=True)
@click.option("--name", default="Administrator", show_default=True)
@click.option("--role", type=click.Choice(["user", "reviewer", "admin"]), default="admin", show_default=True)
@click.option("--password", envvar="AVATAR_ADMIN_PASSWORD", prompt=True, hide_input=True, confirmation_prompt=True)
def admin_create(email: str, name: str, role: str, password: str):
    """Creates an account with a role (admin by default)."""
    from avatar.domain import DomainError
    from avatar.domain.accounts import register
    from avatar.domain.actor import Actor, audit
    from avatar.store.models import Role

    svc = services()
    try:
        with svc.db.session_scope() as s:
            uid = register(s, email, name, password, role=Role(role)).id
            audit(s, Actor.cli(), "admin.account_created", target_type="user", target_id=uid, details={"role": role})
    except DomainError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created {role} {email} (id {uid})")


@admin.command("ensure")
@click.option("--email", envvar="AVATAR_ADMIN_EMAIL", default="admin@localhost.localdomain", show_default=True)
def admin_ensure(email: str):
    """Creates the first admin if there is none. Password: AVATAR_ADMIN_PASSWORD, or a random
    one printed once."""
    from avatar.domain import DomainError
    from avatar.domain.accounts import ensure_admin
    from avatar.domain.actor import Actor, audit

    svc = services()
    try:
        with svc.db.session_scope() as s:
            user, generated = ensure_admin(s, email, os.environ.get("AVATAR_ADMIN_PASSWORD"))
            uid = user.id if user else None
            if uid is not None:
                audit(s, Actor.cli(), "admin.account_created", target_type="user", target_id=uid,
                      details={"role": "admin", "command": "ensure"})
    except DomainError as exc:
        raise click.ClickException(f"AVATAR_ADMIN_PASSWORD: {exc}") from exc
    if uid is None:
        click.echo("an admin account exists")
        return
    click.echo(f"created admin {email}")
    if generated:
        click.echo(f"  password (shown once, store it now): {generated}")


COMMANDS = [admin]
