"""Envelope encryption, crypto-shredding and the blob backend contract."""
import logging
import os
import time

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from avatar.store.blobs import BlobNotFound, FilesystemBlobs, StorageError
from avatar.store.crypto import DecryptionError, Keyring, open_sealed
from avatar.store.media import MediaShredded, MediaStore
from avatar.store.models import MediaObject, SubjectKey

PLAIN = b"\x89PNG face reference " * 500


def test_roundtrip_and_nothing_plain_on_disk(services, tmp_path):
    media, db = services.media, services.db
    with db.session_scope() as s:
        obj = media.put(s, 7, "face_ref", PLAIN, "image/png")
        key = obj.storage_key
    raw = media.blobs.read(key)
    assert PLAIN[:20] not in raw and b"face reference" not in raw
    with db.session_scope() as s:
        assert media.get(s, s.get(MediaObject, obj.id)) == PLAIN
    # the wrapped data key is not the data key, and the master key alone cannot read the blob
    with db.session_scope() as s:
        wrapped = s.scalar(sa.select(SubjectKey.wrapped_key).where(SubjectKey.subject_id == 7))
    assert len(wrapped) > 32
    with pytest.raises(DecryptionError):
        open_sealed(services.keyring.current, raw, key.encode())


def test_blob_moved_to_another_key_fails_integrity(services):
    media, db = services.media, services.db
    with db.session_scope() as s:
        a = media.put(s, 1, "evidence", b"first", "text/plain")
        b = media.put(s, 1, "evidence", b"second", "text/plain")
    media.blobs.write(b.storage_key, media.blobs.read(a.storage_key))
    with db.session_scope() as s, pytest.raises(StorageError, match="integrity"):
        media.get(s, s.get(MediaObject, b.id))


def test_crypto_shredding_makes_raw_files_undecryptable(services):
    media, db = services.media, services.db
    with db.session_scope() as s:
        objs = [media.put(s, 42, "voice_ref", PLAIN + bytes([i]), "audio/wav") for i in range(3)]
        other = media.put(s, 43, "voice_ref", b"someone else", "audio/wav")
    raw = {o.storage_key: media.blobs.read(o.storage_key) for o in objs}
    with db.session_scope() as s:
        assert media.shred_subject(s, 42, delete_blobs=False) == 3
    # The raw ciphertexts are still on disk, and no key that remains can open them.
    remaining = []
    with db.session_scope() as s:
        for row in s.scalars(sa.select(SubjectKey)):
            if row.wrapped_key is not None:
                remaining.append(services.keyring.unwrap(row.wrapped_key, row.master_key_id, row.subject_id))
        assert s.scalar(sa.select(SubjectKey).where(SubjectKey.subject_id == 42)).destroyed_at is not None
    remaining.append(services.keyring.current)
    for storage_key, blob in raw.items():
        assert media.blobs.read(storage_key) == blob
        for k in remaining:
            with pytest.raises(DecryptionError):
                open_sealed(k, blob, storage_key.encode())
    with db.session_scope() as s, pytest.raises(MediaShredded):
        media.get(s, s.get(MediaObject, objs[0].id))
    with db.session_scope() as s:  # other subjects are untouched
        assert media.get(s, s.get(MediaObject, other.id)) == b"someone else"


def test_rolled_back_transaction_leaves_no_blob(services):
    media, db = services.media, services.db
    with pytest.raises(RuntimeError):
        with db.session_scope() as s:
            obj = media.put(s, 5, "evidence", b"half written", "text/plain")
            key = obj.storage_key
            assert media.blobs.exists(key)
            raise RuntimeError("request failed after the upload")
    assert not media.blobs.exists(key)
    with db.session_scope() as s:
        assert s.scalar(sa.select(sa.func.count(MediaObject.id))) == 0


def _lose_connection_at_commit(engine, landed: bool):
    """The next COMMIT fails as a dropped connection would; if `landed`, the server had committed."""
    def commit(conn):
        event.remove(engine, "commit", commit)
        if landed:
            conn.connection.dbapi_connection.commit()
        raise sa.exc.OperationalError("COMMIT", None, ConnectionError("server closed the connection unexpectedly"))

    event.listen(engine, "commit", commit)


def test_commit_of_unknown_outcome_keeps_its_blobs_and_the_sweeper_removes_only_orphans(services, caplog):
    media, db = services.media, services.db
    keys = {}
    for landed in (True, False):
        _lose_connection_at_commit(db.engine, landed)
        with caplog.at_level(logging.WARNING, "avatar.store.media"), pytest.raises(sa.exc.OperationalError):
            with db.session_scope() as s:
                keys[landed] = media.put(s, 7, "evidence", f"landed={landed}".encode(), "text/plain").storage_key
        assert media.blobs.exists(keys[landed]) and keys[landed] in caplog.text  # kept, and said so
    with db.session_scope() as s:
        rows = s.scalars(sa.select(MediaObject)).all()
        assert [r.storage_key for r in rows] == [keys[True]]
        assert media.get(s, rows[0]) == b"landed=True"  # the commit that landed still has its file
        assert media.sweep_orphans(s, grace_seconds=3600) == {"checked": 0, "deleted": 0}  # too recent
        assert media.sweep_orphans(s, grace_seconds=0) == {"checked": 2, "deleted": 1}
        assert media.get(s, rows[0]) == b"landed=True"
    assert not media.blobs.exists(keys[False])


def test_key_rotation_rewraps_without_touching_media(services):
    media, db = services.media, services.db
    with db.session_scope() as s:
        obj = media.put(s, 9, "evidence", PLAIN, "text/plain")
    blob_before = media.blobs.read(obj.storage_key)
    new_ring = Keyring(os.urandom(32), previous=[services.keyring.current])
    with db.session_scope() as s:
        assert media.rewrap_all(s, new_ring) == 1
    rotated = MediaStore(media.blobs, Keyring(new_ring.current))  # old master key no longer known
    with db.session_scope() as s:
        assert rotated.get(s, s.get(MediaObject, obj.id)) == PLAIN
    assert media.blobs.read(obj.storage_key) == blob_before


def test_empty_media_is_refused(services):
    with services.db.session_scope() as s, pytest.raises(ValueError):
        services.media.put(s, 1, "evidence", b"", "text/plain")


@pytest.mark.parametrize("key", ["../escape", "/abs", "a/../../b", "", "a b"])
def test_filesystem_backend_refuses_path_tricks(tmp_path, key):
    with pytest.raises(ValueError):
        FilesystemBlobs(tmp_path).write(key, b"x")


def test_filesystem_backend_contract(tmp_path):
    blobs = FilesystemBlobs(tmp_path / "m")
    blobs.write("1/a/x", b"one")
    blobs.write("1/a/x", b"two")  # atomic replace
    assert blobs.read("1/a/x") == b"two" and blobs.exists("1/a/x")
    assert not [p for p in (tmp_path / "m").rglob("*.tmp")]
    assert list(blobs.keys(older_than=time.time() + 1)) == ["1/a/x"]
    assert list(blobs.keys(older_than=time.time() - 60)) == []  # written just now
    blobs.delete("1/a/x")
    blobs.delete("1/a/x")  # idempotent
    with pytest.raises(BlobNotFound):
        blobs.read("1/a/x")
