from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from avatar.store.db import Base, utcnow


class Generation(Base):
    """One synthesized output (speech or video) and what authorised it; the record `avatar verify` finds."""

    __tablename__ = "generations"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    job_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    requester_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    subject_id: so.Mapped[int] = so.mapped_column(index=True)
    consent_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("consents.id", ondelete="SET NULL"))
    modality: so.Mapped[str] = so.mapped_column(sa.String(16))  # speech | video
    purpose: so.Mapped[str] = so.mapped_column(sa.String(32))
    script: so.Mapped[str] = so.mapped_column(sa.Text)
    backend: so.Mapped[str] = so.mapped_column(sa.String(64))
    watermark_id: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True)
    output_media_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("media_objects.id", ondelete="SET NULL"))
    manifest: so.Mapped[Optional[dict]] = so.mapped_column(sa.JSON)  # its C2PA active manifest, as a reader prints it
    content_sha256: so.Mapped[Optional[str]] = so.mapped_column(sa.String(64), index=True)  # of the output as made
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    expires_at: so.Mapped[Optional[datetime]]
    revoked_at: so.Mapped[Optional[datetime]]


class Delegation(Base):
    """A subject's explicit, revocable permission for another account to generate with their
    likeness (for the listed modalities and purposes)."""

    __tablename__ = "delegations"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    subject_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    delegate_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    modalities: so.Mapped[list] = so.mapped_column(sa.JSON)
    purposes: so.Mapped[list] = so.mapped_column(sa.JSON)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    expires_at: so.Mapped[Optional[datetime]]
    revoked_at: so.Mapped[Optional[datetime]]
