"""Log-in throttling that tells nobody whether an account exists and lets nobody lock anyone out.

Failures are counted under three keys, each a SHA-256 so no address or email is stored:
- the account from this address: LOGIN_MAX_FAILURES in a row lock it *from this address* for
  LOGIN_LOCK_MINUTES; the owner elsewhere is not affected;
- this address against any account (credential stuffing): ADDRESS_LIMIT failures in the window;
- the account from anywhere (a distributed guess): ACCOUNT_LIMIT failures, then a short back-off
  of ACCOUNT_BACKOFF per further try, so guessing stays slow while the owner waits a minute at most.
Unknown and known emails are counted the same way and get the same answers in the same time (the
caller hashes a password in either case). Counters live in the database, so every process sees them.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from avatar.store.db import utcnow
from avatar.store.models import LoginThrottle

ADDRESS_LIMIT = 20
ACCOUNT_LIMIT = 30
ACCOUNT_BACKOFF = timedelta(minutes=1)
WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Rule:
    key: str
    limit: int
    lock: timedelta


def _key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def rules(email: str, address: str, max_failures: int, lock_minutes: int) -> list[Rule]:
    email = (email or "").strip().lower()[:254]
    return [Rule(_key("account-address", email, address), max_failures, timedelta(minutes=lock_minutes)),
            Rule(_key("address", address), ADDRESS_LIMIT, timedelta(minutes=lock_minutes)),
            Rule(_key("account", email), ACCOUNT_LIMIT, ACCOUNT_BACKOFF)]


def locked_for(session: Session, keys: list[Rule], now: datetime | None = None) -> timedelta | None:
    """How long the longest lock among these keys still runs, or None."""
    now = now or utcnow()
    rows = session.scalars(sa.select(LoginThrottle).where(LoginThrottle.key.in_([r.key for r in keys]))).all()
    left = [r.locked_until - now for r in rows if r.locked_until and r.locked_until > now]
    return max(left) if left else None


def record_failure(session: Session, keys: list[Rule], now: datetime | None = None) -> bool:
    """Counts a failure under every key; returns True when one of them locks now."""
    now = now or utcnow()
    locked = False
    for rule in keys:
        row = session.get(LoginThrottle, rule.key)
        if row is None:
            row = LoginThrottle(key=rule.key, failures=0, window_start=now)
            session.add(row)
        elif now - row.window_start > WINDOW and not (row.locked_until and row.locked_until > now):
            row.failures, row.window_start = 0, now
        row.failures += 1
        if row.failures >= rule.limit:
            row.locked_until = now + rule.lock
            locked = True
            if rule.lock > ACCOUNT_BACKOFF:  # a full lock starts a fresh count afterwards
                row.failures = 0
    if random.random() < 0.01:  # noqa: S311 - keep the table small: forget quiet keys (a sample, not a secret)
        session.execute(sa.delete(LoginThrottle).where(LoginThrottle.window_start < now - 2 * WINDOW,
                                                       sa.or_(LoginThrottle.locked_until.is_(None),
                                                              LoginThrottle.locked_until < now)))
    session.flush()
    return locked


def record_success(session: Session, keys: list[Rule]) -> None:
    """A correct password from this address clears this account's count from this address."""
    session.execute(sa.delete(LoginThrottle).where(LoginThrottle.key == keys[0].key))
