"""Master key rotation: every subject's data key is re-wrapped under a new master key in one
transaction; the media blobs are not touched (they stay encrypted under their data keys).

With the embedded key file (instance/master.key) the new key is first written to master.key.new,
which the keyring also accepts, so an interrupted rotation never locks data out: running the
command again finishes it. After the commit the old key is kept as master.key.retired-<id> (it is
still needed to read database backups taken before the rotation) and master.key.new replaces
master.key atomically."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from avatar.config import read_secret_file, write_secret_file
from avatar.store.crypto import Keyring, key_id
from avatar.store.models import SubjectKey

NEW_SUFFIX = ".new"


@dataclass
class Rotation:
    old_key_id: str
    new_key_id: str
    rewrapped: int
    already_new: int
    retired_file: Path | None


def pending_key_file(master_file: Path) -> Path:
    return master_file.with_name(master_file.name + NEW_SUFFIX)


def read_key_file(path: Path) -> bytes:
    return read_secret_file(path, 32)


def rewrap_keys(session, old: Keyring, new: Keyring) -> tuple[int, int]:
    """Re-wraps every live data key not yet under new's current key. Returns (rewrapped, already)."""
    done = already = 0
    for row in session.scalars(sa.select(SubjectKey).where(SubjectKey.wrapped_key.is_not(None))):
        if row.master_key_id == new.current_id:
            already += 1
            continue
        dek = old.unwrap(row.wrapped_key, row.master_key_id, row.subject_id)
        row.wrapped_key, row.master_key_id = new.wrap(dek, row.subject_id)
        done += 1
    session.flush()
    return done, already


def rewrap(db, old: Keyring, new_key: bytes, within=None) -> tuple[int, int]:
    """rewrap_keys in one transaction of its own; within(session, old_id, new_id, rewrapped), when
    given, adds to that transaction (the rotation's audit event) before it commits."""
    with db.session_scope() as s:
        done, already = rewrap_keys(s, old, Keyring(new_key))
        if within is not None:
            within(s, old.current_id, key_id(new_key), done)
        return done, already


def rotate_file_key(db, master_file: Path, within=None) -> Rotation:
    """Rotates the embedded key file (see module doc); within: as for rewrap()."""
    old_key = read_key_file(master_file)
    pending = pending_key_file(master_file)
    if not pending.exists():
        write_secret_file(pending, secrets.token_bytes(32))
    new_key = read_key_file(pending)
    done, already = rewrap(db, Keyring(old_key, previous=[new_key]), new_key, within)
    retired = master_file.with_name(f"{master_file.name}.retired-{key_id(old_key)}")
    if not retired.exists():
        write_secret_file(retired, old_key)
    os.replace(pending, master_file)
    return Rotation(key_id(old_key), key_id(new_key), done, already, retired)


def rotate_env_key(db, old_key: bytes, new_key: bytes, within=None) -> Rotation:
    """Rotates a master key given by the environment: the operator sets the new one afterwards;
    within: as for rewrap()."""
    done, already = rewrap(db, Keyring(old_key, previous=[new_key]), new_key, within)
    return Rotation(key_id(old_key), key_id(new_key), done, already, None)
