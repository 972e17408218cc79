"""`avatar keys rotate`: the master key that wraps every data key, and the C2PA signing
certificate (issued anew under the instance's root)."""
from __future__ import annotations

import os

import click

from avatar.cli.common import services


@click.group()
def keys():
    """Encryption and signing key management."""


@keys.command("rotate")
@click.option("--only", type=click.Choice(["master", "c2pa"]),
              help="Rotate only the master key, or only the C2PA signing certificate (default: both).")
def keys_rotate(only: str | None):
    """Re-wraps every data key under a new master key (media is not re-encrypted) and issues a new
    C2PA signing key and certificate under the instance's root (outputs signed before stay Trusted).
    Stop the app and workers first. With AVATAR_MASTER_KEY set, give the new key as
    AVATAR_NEW_MASTER_KEY and set it as AVATAR_MASTER_KEY afterwards; otherwise instance/master.key
    is rotated in place. With AVATAR_C2PA_* set, the deployment's certificate authority issues
    the signing certificate: that part is left to it."""
    svc = services()
    try:
        if only in (None, "master"):
            _rotate_master(svc)
        if only in (None, "c2pa"):
            _reissue_c2pa(svc, required=only == "c2pa")
    finally:
        svc.close()


def _rotate_master(svc) -> None:
    import base64
    from pathlib import Path

    from avatar.domain.actor import Actor, audit
    from avatar.store import rotation

    def audited(session, old_id, new_id, rewrapped):
        audit(session, Actor.cli(), "keys.rotated", details={"old": old_id, "new": new_id, "rewrapped": rewrapped})

    cfg = svc.config
    if cfg.MASTER_KEY:
        new_b64 = os.environ.get("AVATAR_NEW_MASTER_KEY", "")
        try:
            new_key = base64.b64decode(new_b64, validate=True)
        except ValueError:
            new_key = b""
        if len(new_key) != 32:
            raise click.ClickException("AVATAR_MASTER_KEY is set: give the new key as AVATAR_NEW_MASTER_KEY "
                                       "(base64 of 32 bytes, e.g. `openssl rand -base64 32`)")
        result = rotation.rotate_env_key(svc.db, cfg.master_key(), new_key, audited)
    else:
        master_file = Path(cfg.INSTANCE_PATH) / "master.key"
        if not master_file.is_file():
            raise click.ClickException(f"no master key at {master_file}: nothing to rotate")
        result = rotation.rotate_file_key(svc.db, master_file, audited)
    click.echo(f"master key {result.old_key_id} -> {result.new_key_id}: {result.rewrapped} data keys re-wrapped"
               + (f" ({result.already_new} already were)" if result.already_new else ""))
    if result.retired_file:
        click.echo(f"the old key is kept as {result.retired_file}: it reads database backups taken before now; "
                   "move it offline with those backups, then delete it here")
    else:
        click.echo("now set AVATAR_MASTER_KEY to the new key and restart the app and workers")


def _reissue_c2pa(svc, required: bool) -> None:
    from pathlib import Path

    from avatar.domain.actor import Actor, audit
    from avatar.synthesis.label import content_credentials as cc

    cfg = svc.config
    if cfg.C2PA_CERT:
        advice = ("AVATAR_C2PA_CERT is set: have your certificate authority issue the new signing certificate "
                  "and set AVATAR_C2PA_CERT / AVATAR_C2PA_KEY to it")
        if required:
            raise click.ClickException(advice)
        click.echo(f"C2PA signing certificate left as it is ({advice})")
        return
    folder = Path(cfg.INSTANCE_PATH)
    serial = cc.reissue_signer(folder, cfg.SERVICE_NAME)
    with svc.db.session_scope() as s:
        audit(s, Actor.cli(), "keys.c2pa_signer_reissued", details={"serial": serial})
    click.echo(f"new C2PA signing certificate {serial} under the instance's root ({folder / cc.ROOT_CERT}); "
               "restart the app and workers to sign with it")


COMMANDS = [keys]
