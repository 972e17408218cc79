"""Encrypted media store: every face, voice, evidence and output file goes through here.

put() encrypts under the subject's data key and writes the blob before the row is flushed;
if the surrounding transaction rolls back, the blobs it wrote are deleted again, so a failed
request leaves neither a row without a file nor a file without a row.
"""
from __future__ import annotations

import hashlib
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
                except Exception:  # noqa: BLE001 - key is gone; leftovers are unreadable
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

    def check_writable(self) -> None:
        key = f"health/{uuid.uuid4().hex}"
        self.blobs.write(key, b"ok")
        try:
            if self.blobs.read(key) != b"ok":
                raise StorageError("media store returned different bytes")
        finally:
            self.blobs.delete(key)


def _track_pending(session: Session, blobs: BlobBackend, key: str) -> None:
    session.info.setdefault(_PENDING, []).append((blobs, key))


@event.listens_for(Session, "after_commit")
def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


@event.listens_for(Session, "after_rollback")
def _delete_pending(session: Session) -> None:
    for blobs, key in session.info.pop(_PENDING, []):
        try:
            blobs.delete(key)
        except Exception:  # noqa: BLE001 - best effort; the blob has no row and no reader
            pass
