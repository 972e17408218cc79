"""Encrypted media store: every face, voice, evidence and output file goes through here.

put() encrypts under the subject's data key and writes the blob before the row is flushed;
if the surrounding transaction rolls back, the blobs it wrote are deleted again, so a failed
request leaves neither a row without a file nor a file without a row. One exception: when the
database connection fails while the COMMIT is under way, nobody here can know whether the rows
landed, so the blobs are kept (deleting them could leave a saved row without its file) and
sweep_orphans() removes them later if no row names them.
"""
from __future__ import annotations

import hashlib
import logging
import sys
import time
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from avatar.store.blobs import BlobBackend, BlobNotFound, StorageError
from avatar.store.crypto import DecryptionError, Keyring, open_sealed, seal
from avatar.store.db import utcnow
from avatar.store.models import MediaObject, SubjectKey

_PENDING = "avatar.pending_blobs"
_COMMITTING = "avatar.committing"
ORPHAN_GRACE_SECONDS = 3600  # a blob this old with no row is an orphan (no request or job takes this long)
log = logging.getLogger(__name__)


class MediaShredded(StorageError):
    """The subject's data key was destroyed: the media can never be decrypted again."""


class MediaStore:
    def __init__(self, blobs: BlobBackend, keyring: Keyring):
        self.blobs = blobs
        self.keyring = keyring

    # -- keys ----------------------------------------------------------------------------------
    def _subject_key(self, session: Session, subject_id: int, create: bool) -> bytes:
        row = session.scalar(sa.select(SubjectKey).where(SubjectKey.subject_id == subject_id))
        if row is None:
            if not create:
                raise MediaShredded(f"subject {subject_id} has no data key")
            dek = self.keyring.new_data_key()
            wrapped, mkid = self.keyring.wrap(dek, subject_id)
            session.add(SubjectKey(subject_id=subject_id, wrapped_key=wrapped, master_key_id=mkid))
            session.flush()
            return dek
        if row.wrapped_key is None:
            raise MediaShredded(f"subject {subject_id}'s data key was destroyed on {row.destroyed_at:%Y-%m-%d}")
        return self.keyring.unwrap(row.wrapped_key, row.master_key_id, subject_id)

    def shred_subject(self, session: Session, subject_id: int, delete_blobs: bool = True) -> int:
        """Destroys the subject's data key (crypto-shredding) and marks their media deleted.

        Returns how many media objects were affected. Blob deletion is best effort: without the
        key the bytes are unreadable whether or not they are removed.
        """
        row = session.scalar(sa.select(SubjectKey).where(SubjectKey.subject_id == subject_id))
        now = utcnow()
        if row is not None and row.wrapped_key is not None:
            row.wrapped_key = None
            row.destroyed_at = now
        objs = session.scalars(
            sa.select(MediaObject).where(MediaObject.subject_id == subject_id, MediaObject.deleted_at.is_(None))
        ).all()
        for obj in objs:
            obj.deleted_at = now
        session.flush()
        if delete_blobs:
            for obj in objs:
                try:
                    self.blobs.delete(obj.storage_key)
                except Exception:  # noqa: BLE001, S110 - key is gone; leftovers are unreadable
                    pass
        return len(objs)

    def rewrap_all(self, session: Session, new_keyring: Keyring) -> int:
        """Re-wraps every live data key under new_keyring's current master key (key rotation)."""
        from avatar.store.rotation import rewrap_keys

        return rewrap_keys(session, self.keyring, new_keyring)[0]

    # -- media ---------------------------------------------------------------------------------
    def put(self, session: Session, subject_id: int, kind: str, data: bytes, content_type: str,
            expires_at: datetime | None = None) -> MediaObject:
        if not isinstance(data, (bytes, bytearray)) or not data:
            raise ValueError("media must be non-empty bytes")
        dek = self._subject_key(session, subject_id, create=True)
        owner = f"p{-subject_id}" if subject_id < 0 else str(subject_id)  # protected persons: negative ids
        storage_key = f"{owner}/{kind}/{uuid.uuid4().hex}"
        blob = seal(dek, bytes(data), storage_key.encode())
        _track_pending(session, self.blobs, storage_key)
        self.blobs.write(storage_key, blob)
        obj = MediaObject(
            subject_id=subject_id, kind=kind, content_type=content_type, size=len(data),
            sha256=hashlib.sha256(data).hexdigest(), storage_key=storage_key, expires_at=expires_at,
        )
        session.add(obj)
        session.flush()
        return obj

    def get(self, session: Session, media: MediaObject) -> bytes:
        if media.deleted_at is not None:
            raise MediaShredded(f"media {media.id} was deleted")
        dek = self._subject_key(session, media.subject_id, create=False)
        try:
            blob = self.blobs.read(media.storage_key)
        except BlobNotFound as exc:
            raise StorageError(f"media {media.id} is missing from the store") from exc
        try:
            data = open_sealed(dek, blob, media.storage_key.encode())
        except DecryptionError as exc:
            raise StorageError(f"media {media.id} failed its integrity check") from exc
        return data

    def delete(self, session: Session, media: MediaObject) -> None:
        media.deleted_at = utcnow()
        session.flush()
        self.blobs.delete(media.storage_key)

    def sweep_orphans(self, session: Session, grace_seconds: float = ORPHAN_GRACE_SECONDS,
                      batch: int = 500) -> dict:
        """Deletes blobs older than grace_seconds that no media row names: those kept after a
        commit whose outcome was unknown, or left by a process killed between writing a blob and
        rolling back. Blobs of rows marked deleted are not touched here."""
        checked = deleted = 0
        keys = self.blobs.keys(older_than=time.time() - grace_seconds)
        while chunk := [k for _, k in zip(range(batch), keys)]:
            known = set(session.scalars(sa.select(MediaObject.storage_key).where(MediaObject.storage_key.in_(chunk))))
            for key in chunk:
                if key not in known:
                    self.blobs.delete(key)
                    deleted += 1
            checked += len(chunk)
        return {"checked": checked, "deleted": deleted}

    def check_writable(self) -> None:
        """Writes, reads back and deletes a blob in a folder of its own, as a first upload of a
        new subject would (so a media folder that refuses new folders fails here too)."""
        key = f"health/{uuid.uuid4().hex}/probe"
        self.blobs.write(key, b"ok")
        try:
            if self.blobs.read(key) != b"ok":
                raise StorageError("media store returned different bytes")
        finally:
            self.blobs.delete(key)


def _track_pending(session: Session, blobs: BlobBackend, key: str) -> None:
    session.info.setdefault(_PENDING, []).append((blobs, key))


@event.listens_for(Session, "before_commit")
def _mark_committing(session: Session) -> None:
    session.info[_COMMITTING] = True


@event.listens_for(Session, "after_commit")
def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_COMMITTING, None)


def _outcome_unknown(session: Session) -> bool:
    """Is this rollback handling a lost database connection during a commit? Then the commit may
    have landed (the server saw COMMIT, the answer was lost)."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    committing = bool(session.info.pop(_COMMITTING, False))
    exc = sys.exc_info()[1]
    if not committing or not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    # SQLite refusing the COMMIT for its write lock is a known outcome: nothing landed
    return not any(m in str(exc) for m in ("database is locked", "database is busy"))


@event.listens_for(Session, "after_rollback")
def _delete_pending(session: Session) -> None:
    if _outcome_unknown(session):
        kept = [key for _, key in session.info.pop(_PENDING, [])]
        if kept:
            log.warning("database connection lost during commit: keeping %d blob(s) %s; "
                        "sweep_orphans() removes them if the commit did not land", len(kept), kept)
        return
    for blobs, key in session.info.pop(_PENDING, []):
        try:
            blobs.delete(key)
        except Exception:  # noqa: BLE001, S110 - best effort; the blob has no row and no reader
            pass
