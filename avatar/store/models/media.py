from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from avatar.store.db import Base, utcnow


class SubjectKey(Base):
    """A subject's data key, wrapped by the master key. Destroying it shreds all their media."""

    __tablename__ = "subject_keys"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    # Not a foreign key: the key row must outlive account deletion to prove destruction.
    subject_id: so.Mapped[int] = so.mapped_column(unique=True, index=True)
    wrapped_key: so.Mapped[Optional[bytes]] = so.mapped_column(sa.LargeBinary)
    master_key_id: so.Mapped[str] = so.mapped_column(sa.String(16))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    destroyed_at: so.Mapped[Optional[datetime]]


class MediaObject(Base):
    """Metadata of one encrypted blob; the bytes live in the blob backend under storage_key."""

    __tablename__ = "media_objects"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    subject_id: so.Mapped[int] = so.mapped_column(index=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(32))  # face_ref, voice_ref, evidence, output, template…
    content_type: so.Mapped[str] = so.mapped_column(sa.String(100))
    size: so.Mapped[int]
    sha256: so.Mapped[str] = so.mapped_column(sa.String(64))  # of the plaintext
    storage_key: so.Mapped[str] = so.mapped_column(sa.String(200), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    expires_at: so.Mapped[Optional[datetime]]
    deleted_at: so.Mapped[Optional[datetime]]
