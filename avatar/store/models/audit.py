from __future__ import annotations

from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from avatar.store.db import Base


class AuditEvent(Base):
    """Append-only, hash-chained record of a security-relevant action (see store/audit.py).

    actor_id and target_id are plain integers, not foreign keys: the trail outlives what it names.
    """

    __tablename__ = "audit_events"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    seq: so.Mapped[int] = so.mapped_column(unique=True)
    at: so.Mapped[str] = so.mapped_column(sa.String(32), index=True)  # ISO-8601 UTC, part of the hash
    actor_id: so.Mapped[Optional[int]] = so.mapped_column(index=True)
    action: so.Mapped[str] = so.mapped_column(sa.String(64), index=True)
    target_type: so.Mapped[Optional[str]] = so.mapped_column(sa.String(32))
    target_id: so.Mapped[Optional[int]]
    ip: so.Mapped[Optional[str]] = so.mapped_column(sa.String(64))
    details: so.Mapped[str] = so.mapped_column(sa.Text, default="{}")  # canonical JSON
    prev_hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    hash: so.Mapped[str] = so.mapped_column(sa.String(64))
