from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from avatar.store.db import Base, utcnow


class ProtectedPerson(Base):
    """A public figure who asked not to be cloned: their templates join the likeness guard.

    Their media (templates, reference photo) is stored encrypted under subject id −id, so it can be
    shredded like anyone's."""

    __tablename__ = "protected_persons"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120), unique=True)
    created_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)

    @property
    def subject_id(self) -> int:
        return -self.id


class ProtectedTemplate(Base):
    __tablename__ = "protected_templates"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    person_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("protected_persons.id", ondelete="CASCADE"), index=True)
    modality: so.Mapped[str] = so.mapped_column(sa.String(8))  # face | voice
    template_media_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("media_objects.id"))
    reference_media_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("media_objects.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
