"""`avatar admin`: accounts created from the command line; voice profiles brought up to date."""
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


@admin.command("analyse-voices")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many profiles.")
def admin_analyse_voices(limit: int | None):
    """Makes the offline voice's analysis for voice profiles stored without one (enrolled before it
    was kept with the profile), so that their generations skip it. Audited per profile; a profile
    whose media were shredded, or whose voice is too short to convert toward, is left as it is."""
    import sqlalchemy as sa

    from avatar.domain.actor import Actor, audit
    from avatar.domain.enrollment import add_voice_analysis
    from avatar.jobs.enrollment import voice_analysis
    from avatar.store.blobs import StorageError  # MediaShredded among them
    from avatar.store.models import MediaObject, VoiceProfile

    svc = services()
    with svc.db.session_scope() as s:
        todo = s.execute(sa.select(VoiceProfile.id, VoiceProfile.reference_media_id)
                         .where(VoiceProfile.analysis_media_id.is_(None)).order_by(VoiceProfile.id)).all()
    done = left = 0
    for vp_id, ref_id in todo[:limit]:
        try:
            with svc.db.session_scope() as s:
                wav = svc.media.get(s, s.get(MediaObject, ref_id))
        except StorageError:
            left += 1
            continue
        analysis = voice_analysis(wav)  # seconds each: outside any transaction
        with svc.db.session_scope() as s:
            vp = s.get(VoiceProfile, vp_id)
            # the voice may have changed meanwhile (a reading added): then its own analysis stands
            if analysis is None or vp is None or vp.reference_media_id != ref_id or vp.analysis_media_id is not None:
                left += 1
                continue
            add_voice_analysis(s, svc.media, vp, analysis)
            audit(s, Actor.cli(), "voice.analysis_added", target_type="voice_profile", target_id=vp.id,
                  details={"bytes": len(analysis)})
        done += 1
    click.echo(f"analysed {done} voice profile(s); {left} left without one")


COMMANDS = [admin]
