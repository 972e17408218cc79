from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from avatar.store.db import Base, utcnow


class Role(str, enum.Enum):
    USER = "user"
    REVIEWER = "reviewer"
    ADMIN = "admin"


class User(Base):
    __tablename__ = "users"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    email: so.Mapped[str] = so.mapped_column(sa.String(254), unique=True, index=True)
    full_name: so.Mapped[str] = so.mapped_column(sa.String(120))
    password_hash: so.Mapped[str] = so.mapped_column(sa.String(255))
    role: so.Mapped[str] = so.mapped_column(sa.String(16), default=Role.USER.value)
    is_active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    last_login_at: so.Mapped[Optional[datetime]]
    # Part of every session's identity (get_id): raising it ends every session of the account at
    # its next request (log-out, password or role change, revocation, deletion).
    session_version: so.Mapped[int] = so.mapped_column(default=0, server_default="0")
    # Set by the enrollment rules after repeated failed liveness attempts.
    enroll_locked_until: so.Mapped[Optional[datetime]]
    # Pseudonymous id used in manifests and exports instead of the email.
    pseudonym: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True)

    def has_role(self, *roles: Role | str) -> bool:
        wanted = {r.value if isinstance(r, Role) else r for r in roles}
        return self.role in wanted

    # Flask-Login protocol (kept here so the web layer needs no wrapper class).
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """What the session cookie holds: the id and the session version it was issued under."""
        return f"{self.id}.{self.session_version}"

    def end_sessions(self) -> None:
        """Every session issued so far stops working at its next request."""
        self.session_version = (self.session_version or 0) + 1


class ApiToken(Base):
    """Per-user API token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(80))
    token_sha256: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    # what the token may do (avatar.domain.tokens.SCOPES); endpoints outside them answer 403
    scopes: so.Mapped[list] = so.mapped_column(sa.JSON, default=lambda: ["generations"],
                                               server_default='["generations"]')
    last_used_at: so.Mapped[Optional[datetime]]
    revoked_at: so.Mapped[Optional[datetime]]


class LoginThrottle(Base):
    """Failed log-ins counted per key: an account from one address, an account from anywhere,
    or one address against any account. Keys are SHA-256 of the parts, so no email is stored
    and known and unknown addresses are counted alike."""

    __tablename__ = "login_throttles"

    key: so.Mapped[str] = so.mapped_column(sa.String(64), primary_key=True)
    failures: so.Mapped[int] = so.mapped_column(default=0)
    window_start: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    locked_until: so.Mapped[Optional[datetime]]


class IdempotencyKey(Base):
    """A client's Idempotency-Key on a creating request: the first request's answer, replayed for
    a retry with the same key and body (domain/idempotency.py). status None: still being made."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("user_id", "scope", "key"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scope: so.Mapped[str] = so.mapped_column(sa.String(200))  # "POST /api/generations"
    key: so.Mapped[str] = so.mapped_column(sa.String(255))
    request_sha256: so.Mapped[str] = so.mapped_column(sa.String(64))
    status: so.Mapped[Optional[int]]
    response: so.Mapped[Optional[str]] = so.mapped_column(sa.Text)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow, index=True)
