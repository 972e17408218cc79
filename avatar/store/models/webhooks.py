"""Webhook endpoints an account registered, and each event's delivery to one of them (its
attempts kept for the account to see)."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from avatar.store.db import Base, utcnow


class WebhookEndpoint(Base):
    """A callback URL and the events it wants. Its signing secret is never stored: it is derived
    from the instance's webhook key, the endpoint's id and secret_version (domain/webhooks.py), so
    a copy of the database signs nothing."""

    __tablename__ = "webhook_endpoints"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    url: so.Mapped[str] = so.mapped_column(sa.String(2048))
    events: so.Mapped[list] = so.mapped_column(sa.JSON)
    description: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    token_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("api_tokens.id", ondelete="SET NULL"))
    secret_version: so.Mapped[int] = so.mapped_column(default=1)
    # after a rotation, deliveries are signed with the previous secret too until then
    previous_secret_until: so.Mapped[Optional[datetime]]
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    deleted_at: so.Mapped[Optional[datetime]]


class WebhookDelivery(Base):
    """One event for one endpoint: pending until an attempt is answered 2xx (delivered), or the
    retries are spent (failed), or it is cancelled (the subject's consent was withdrawn before it
    went out, or the endpoint was deleted)."""

    __tablename__ = "webhook_deliveries"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    endpoint_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
                                                   index=True)
    message_id: so.Mapped[str] = so.mapped_column(sa.String(40), unique=True)  # webhook-id: the same on every retry
    event_type: so.Mapped[str] = so.mapped_column(sa.String(40))
    payload: so.Mapped[dict] = so.mapped_column(sa.JSON)
    subject_id: so.Mapped[Optional[int]] = so.mapped_column(index=True)  # whose likeness it concerns, if any
    state: so.Mapped[str] = so.mapped_column(sa.String(16), default="pending", index=True)
    attempts: so.Mapped[list] = so.mapped_column(sa.JSON, default=list)  # [{"at", "status", "error", "ms"}]
    job_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("jobs.id", ondelete="SET NULL"))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow, index=True)
    finished_at: so.Mapped[Optional[datetime]]
