"""Per-user API tokens: shown once, stored only as SHA-256, revocable, at most 10 live per user,
each limited to the scopes chosen when it was made. A token reaches only the API endpoints named
in ENDPOINT_SCOPES; account pages, exports, deletion and token management need a browser session."""
from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from avatar.domain import DomainError, NotFound
from avatar.domain.actor import Actor, audit
from avatar.store.db import utcnow
from avatar.store.models import ApiToken, User

PREFIX = "avt_"
MAX_LIVE = 10
SCOPES = {
    "generations": "create, follow and download generations of likenesses you may use",
    "enroll": "drive the enrollment API (challenges, recording and paragraph uploads)",
    "webhooks": "register, list, rotate and delete webhook endpoints (callbacks when generations end)",
}
ANY = "*"  # any live token, whatever its scopes
ENDPOINT_SCOPES = {
    "api_generations.list_generations": "generations", "api_generations.create_generation": "generations",
    "api_generations.get_generation": "generations", "api_generations.download": "generations",
    "api_generations.manifest": "generations", "api_generations.openapi": ANY, "api_generations.docs": ANY, "generate.verify_api": ANY,
    "api.job_status": ANY, "api.job_cancel": ANY,  # a job is the caller's own, made under some scope
    "enroll.new_session": "enroll", "enroll.upload_recording": "enroll", "enroll.upload_paragraph": "enroll",
    "enroll.upload_reading": "enroll",
    "enroll.status": "enroll",
    "webhooks.api_list": "webhooks", "webhooks.api_create": "webhooks", "webhooks.api_get": "webhooks",
    "webhooks.api_delete": "webhooks", "webhooks.api_rotate": "webhooks",
}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(session: Session, user: User, name: str, scopes: list[str], *, by: Actor) -> tuple[ApiToken, str]:
    """A new token (its secret returned once), audited in the same transaction."""
    name = " ".join((name or "").split())[:80]
    if not name:
        raise DomainError("Give the token a name (where it will be used).")
    scopes = sorted(set(scopes or []))
    if not scopes or not set(scopes) <= set(SCOPES):
        raise DomainError(f"Choose what the token may do: {', '.join(SCOPES)}.")
    live = session.scalar(sa.select(sa.func.count(ApiToken.id)).where(
        ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)))
    if live >= MAX_LIVE:
        raise DomainError(f"You have {MAX_LIVE} live tokens; revoke one first.")
    plain = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, token_sha256=_digest(plain), scopes=scopes)
    session.add(row)
    session.flush()
    audit(session, by, "token.created", target_type="api_token", target_id=row.id,
          details={"name": row.name, "scopes": row.scopes})
    return row, plain


def revoke(session: Session, user: User, token_id: int, *, by: Actor) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFound("No such token.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit(session, by, "token.revoked", target_type="api_token", target_id=row.id)
    return row


def authenticate(session: Session, plain: str) -> tuple[User, set[str], int] | None:
    """The active user holding this live token, the token's scopes (ANY included) and its id (its
    last use is recorded), or None."""
    if not plain.startswith(PREFIX) or len(plain) > 100:
        return None
    row = session.scalar(sa.select(ApiToken).where(ApiToken.token_sha256 == _digest(plain),
                                                  ApiToken.revoked_at.is_(None)))
    if row is None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    row.last_used_at = utcnow()
    session.commit()
    return user, set(row.scopes or []) | {ANY}, row.id
