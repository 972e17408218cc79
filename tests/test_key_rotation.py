"""`avatar keys rotate`: data keys re-wrapped under a new master key in one step, blobs untouched,
shredded subjects stay shredded, an interrupted rotation finishes on the next run."""
import base64
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from avatar.cli import main
from avatar.config import Config
from avatar.services import Services
from avatar.store.crypto import key_id
from avatar.store.media import MediaShredded
from avatar.store.models import MediaObject, SubjectKey
from avatar.store.rotation import pending_key_file, read_key_file
from avatar.synthesis.label import content_credentials as cc


def _env(app):
    cfg = app.config["AVATAR"]
    return {"AVATAR_INSTANCE_PATH": cfg.INSTANCE_PATH, "AVATAR_DATABASE_URL": cfg.DATABASE_URL}


def _fill(services):
    with services.db.session_scope() as s:
        ids = [services.media.put(s, subject, "voice_ref", f"secret of {subject}".encode() * 50, "audio/wav").id
               for subject in (1, 2, 3)]
        services.media.shred_subject(s, 3)
    return ids


def _fresh(env):
    return Services(Config.from_env(environ=env))


def _blobs(services, ids):
    with services.db.session_scope() as s:
        return {i: services.media.blobs.read(s.get(MediaObject, i).storage_key) for i in ids[:2]}


def test_rotate_the_key_file(app, services):
    ids = _fill(services)
    before = _blobs(services, ids)
    master = os.path.join(app.config["AVATAR"].INSTANCE_PATH, "master.key")
    old = read_key_file(Path(master))
    watermark_key = services.watermark_key
    r = CliRunner().invoke(main, ["keys", "rotate"], env=_env(app))
    assert r.exit_code == 0, r.output
    assert "2 data keys re-wrapped" in r.output and f"retired-{key_id(old)}" in r.output
    assert "new C2PA signing certificate" in r.output  # both keys turn in one command
    new = _fresh(_env(app))
    assert new.watermark_key == watermark_key  # every output ever made stays readable
    assert new.keyring.current_id != key_id(old) and oct(os.stat(master).st_mode & 0o777) == "0o600"
    with new.db.session_scope() as s:
        assert {k.master_key_id for k in s.scalars(sa.select(SubjectKey).where(SubjectKey.wrapped_key.is_not(None)))} \
            == {new.keyring.current_id}
        assert new.media.get(s, s.get(MediaObject, ids[0])).startswith(b"secret of 1")
        with pytest.raises(MediaShredded):
            new.media.get(s, s.get(MediaObject, ids[2]))
    assert _blobs(new, ids) == before  # the media itself was not re-encrypted
    new.close()


def test_an_interrupted_rotation_finishes_and_data_stays_readable(app, services):
    from avatar.config import write_secret_file
    from avatar.store.rotation import rewrap

    ids = _fill(services)
    master = Path(app.config["AVATAR"].INSTANCE_PATH) / "master.key"
    new_key = os.urandom(32)
    write_secret_file(pending_key_file(master), new_key)
    rewrap(services.db, services.keyring, new_key)  # committed, but "crashed" before the key file swap
    half = _fresh(_env(app))  # the app restarted in between still reads everything
    with half.db.session_scope() as s:
        assert half.media.get(s, s.get(MediaObject, ids[1])).startswith(b"secret of 2")
    half.close()
    r = CliRunner().invoke(main, ["keys", "rotate"], env=_env(app))
    assert r.exit_code == 0 and "0 data keys re-wrapped (2 already were)" in r.output, r.output
    assert read_key_file(master) == new_key and not pending_key_file(master).exists()


def test_rotate_an_environment_key(app, tmp_path):
    old = base64.b64encode(os.urandom(32)).decode()
    env = {**_env(app), "AVATAR_MASTER_KEY": old}
    svc = _fresh(env)
    ids = _fill(svc)
    svc.close()
    r = CliRunner().invoke(main, ["keys", "rotate"], env=env)
    assert r.exit_code == 1 and "AVATAR_NEW_MASTER_KEY" in r.output
    new = base64.b64encode(os.urandom(32)).decode()
    root, root_key = cc.issue_root("Studio")  # a deployment's own certificate authority signs outputs
    c2pa = dict(zip(("AVATAR_C2PA_CERT", "AVATAR_C2PA_KEY"), cc.issue_signer(root, root_key, "Studio"), strict=True))
    r = CliRunner().invoke(main, ["keys", "rotate"], env={**env, **c2pa, "AVATAR_C2PA_TRUST_ANCHORS": root,
                                                          "AVATAR_NEW_MASTER_KEY": new})
    assert r.exit_code == 0 and "set AVATAR_MASTER_KEY" in r.output
    assert "C2PA signing certificate left as it is" in r.output  # that certificate is its CA's to renew
    after = _fresh({**env, "AVATAR_MASTER_KEY": new})
    with after.db.session_scope() as s:
        assert after.media.get(s, s.get(MediaObject, ids[0])).startswith(b"secret of 1")
    after.close()
