"""Idempotent creation: a client that sends `Idempotency-Key` with a creating request (a retry after
a timeout, a proxy's retry) gets the first request's answer again instead of a second resource.

A key belongs to one account and one route and lives WINDOW. The first request claims it in a
transaction of its own (the unique constraint picks one winner among concurrent requests), does
its work, and stores its answer; a retry with the same body gets that answer back; the same key
with another body is refused (422); a retry while the first is still being made waits for it a
little, then is told to come back (409). An answer the server failed to make (5xx) is not kept:
the key is released and the client may try again."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from avatar.domain import Conflict, DomainError
from avatar.store.db import utcnow
from avatar.store.models import IdempotencyKey

WINDOW = timedelta(hours=24)
MAX_KEY = 255
WAIT_SECONDS, POLL_SECONDS = 5.0, 0.1


class KeyReused(DomainError):
    """The key came before with another request body."""

    status = 422


class StillRunning(Conflict):
    """The first request with this key has not finished yet."""


@dataclass(frozen=True)
class Claim:
    id: int | None  # the row this request fills in; None when `replay` holds the earlier answer
    replay: tuple[int, str] | None = None  # (status, body)


def check_key(key: str) -> str:
    """The key as sent; DomainError (400) unless 1-255 visible ASCII characters."""
    if not 1 <= len(key) <= MAX_KEY or not all(33 <= ord(c) < 127 for c in key):
        raise DomainError(f"Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters.")
    return key


def digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()


def claim(db, user_id: int, scope: str, key: str, request_sha256: str, wait: float = WAIT_SECONDS) -> Claim:
    """Claims (user, scope, key) for this request, or returns the earlier answer. Raises KeyReused
    or StillRunning."""
    deadline = time.monotonic() + wait
    while True:
        with db.session_scope() as s:
            row = s.scalar(sa.select(IdempotencyKey).where(IdempotencyKey.user_id == user_id,
                                                          IdempotencyKey.scope == scope, IdempotencyKey.key == key))
            if row is not None and row.created_at < utcnow() - WINDOW:
                s.delete(row)  # an expired key starts afresh
                s.flush()
                row = None
            if row is None:
                row = IdempotencyKey(user_id=user_id, scope=scope, key=key, request_sha256=request_sha256)
                s.add(row)
                try:
                    s.flush()
                except IntegrityError:  # a concurrent request claimed it first: look again
                    s.rollback()
                    continue
                return Claim(row.id)
            if row.request_sha256 != request_sha256:
                raise KeyReused("This Idempotency-Key was used with a different request; use a new key.")
            if row.status is not None:
                return Claim(None, (row.status, row.response or ""))
        if time.monotonic() >= deadline:
            raise StillRunning("A request with this Idempotency-Key is still being made; retry in a moment.")
        time.sleep(POLL_SECONDS)


def record(db, claim_id: int, status: int, body: str) -> None:
    """The answer to replay for the key."""
    with db.session_scope() as s:
        s.execute(sa.update(IdempotencyKey).where(IdempotencyKey.id == claim_id).values(status=status, response=body))


def release(db, claim_id: int) -> None:
    """The request failed on the server's side: the key may be used again."""
    with db.session_scope() as s:
        s.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.id == claim_id))
