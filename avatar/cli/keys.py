"""`avatar keys`: the master key that wraps every data key."""
from __future__ import annotations

import os

import click

from avatar.cli.common import services


@click.group()
def keys():
    """Encryption key management."""


@keys.command("rotate")
def keys_rotate():
    """Re-wraps every data key under a new master key (media is not re-encrypted). Stop the app
    and workers first. With AVATAR_MASTER_KEY set, give the new key as AVATAR_NEW_MASTER_KEY and
    set it as AVATAR_MASTER_KEY afterwards; otherwise instance/master.key is rotated in place."""
    import base64
    from pathlib import Path

    from avatar.domain.actor import Actor, audit
    from avatar.store import rotation

    def audited(session, old_id, new_id, rewrapped):
        audit(session, Actor.cli(), "keys.rotated", details={"old": old_id, "new": new_id, "rewrapped": rewrapped})

    svc = services()
    cfg = svc.config
    try:
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
    finally:
        svc.close()
    click.echo(f"master key {result.old_key_id} -> {result.new_key_id}: {result.rewrapped} data keys re-wrapped"
               + (f" ({result.already_new} already were)" if result.already_new else ""))
    if result.retired_file:
        click.echo(f"the old key is kept as {result.retired_file}: it reads database backups taken before now; "
                   "move it offline with those backups, then delete it here")
    else:
        click.echo("now set AVATAR_MASTER_KEY to the new key and restart the app and workers")



@keys.command("reissue-c2pa")
def keys_reissue_c2pa():
    """Issues a new C2PA signing key and certificate under the instance's own root (the files in the
    instance folder). Outputs signed before stay Trusted: the root is the trust anchor. With
    AVATAR_C2PA_* set, the deployment's certificate authority issues certificates instead."""
    from pathlib import Path

    from avatar.domain.actor import Actor, audit
    from avatar.synthesis.label import content_credentials as cc

    svc = services()
    try:
        cfg = svc.config
        if cfg.C2PA_CERT:
            raise click.ClickException("AVATAR_C2PA_CERT is set: have your certificate authority issue the new "
                                       "signing certificate and set AVATAR_C2PA_CERT / AVATAR_C2PA_KEY to it")
        folder = Path(cfg.INSTANCE_PATH)
        serial = cc.reissue_signer(folder, cfg.SERVICE_NAME)
        with svc.db.session_scope() as s:
            audit(s, Actor.cli(), "keys.c2pa_signer_reissued", details={"serial": serial})
    finally:
        svc.close()
    click.echo(f"new C2PA signing certificate {serial} under the instance's root ({folder / cc.ROOT_CERT}); "
               "restart the app and workers to sign with it")


COMMANDS = [keys]
