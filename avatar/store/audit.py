"""Append-only audit trail as a SHA-256 hash chain.

Each event stores the hash of the previous event and its own hash over (its content + that
previous hash). Changing or removing any row breaks the chain at that row or the next one,
which verify_chain() reports. An event is appended to the transaction of the action it records
(append(), through domain.actor.audit; commit_with() for a web request's session), so the two are
committed together or not at all; record() appends an event in a transaction of its own, for an
event that records no transaction (tests use it). Appends are serialized by the database
(PostgreSQL: an advisory lock; SQLite: its write lock, taken before the head is read), within a
process also by a lock, and, last line, by the unique sequence number.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from avatar.store.db import Database, utcnow
from avatar.store.models import AuditEvent

GENESIS = "0" * 64
_LOCK = threading.Lock()
_PG_LOCK_KEY = 0x61766174  # "avat"


def canonical(details: dict[str, Any] | None) -> str:
    return json.dumps(details or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(ev: AuditEvent) -> str:
    content = canonical({
        "seq": ev.seq, "at": ev.at, "actor_id": ev.actor_id, "action": ev.action,
        "target_type": ev.target_type, "target_id": ev.target_id, "ip": ev.ip,
        "details": ev.details, "prev_hash": ev.prev_hash,
    })
    return hashlib.sha256(content.encode()).hexdigest()


def append(session: Session, action: str, *, actor_id: int | None, target_type: str | None,
            target_id: int | None, ip: str | None, details: dict | None) -> AuditEvent:
    """Adds the next event of the chain to session's transaction; the caller commits. The
    transaction first takes the database's lock on appending (PostgreSQL: an advisory lock;
    SQLite: the write lock, by an empty UPDATE), so the head it reads stays the head until commit."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    else:
        session.execute(sa.update(AuditEvent).where(sa.false()).values(seq=AuditEvent.seq))
    head = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).first()
    ev = AuditEvent(
        seq=(head.seq + 1) if head else 1,
        at=utcnow().isoformat(timespec="microseconds"),
        actor_id=actor_id, action=action, target_type=target_type, target_id=target_id,
        ip=ip, details=canonical(details), prev_hash=head.hash if head else GENESIS,
    )
    ev.hash = event_hash(ev)
    session.add(ev)
    return ev


def record(db: Database, action: str, *, actor_id: int | None = None, target_type: str | None = None,
           target_id: int | None = None, ip: str | None = None, details: dict | None = None) -> AuditEvent:
    """Appends one event in its own transaction and returns it (committed). An action's event
    belongs in the action's transaction instead (append, or commit_with)."""
    for attempt in range(5):
        try:
            with _LOCK, db.session_scope() as session:
                ev = append(session, action, actor_id=actor_id, target_type=target_type, target_id=target_id,
                             ip=ip, details=details)
            return ev
        except IntegrityError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def commit_with(session: Session, action: str, *, actor_id: int | None = None, target_type: str | None = None,
                target_id: int | None = None, ip: str | None = None, details: dict | None = None) -> AuditEvent:
    """Appends one event to session's open transaction and commits both: the action and its
    audit event are saved together or not at all (a database failure in between loses neither
    alone). On failure the session is rolled back and the error raised."""
    try:
        ev = append(session, action, actor_id=actor_id, target_type=target_type, target_id=target_id,
                     ip=ip, details=details)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return ev


@dataclass
class ChainReport:
    ok: bool
    events: int
    first_broken_id: int | None = None
    first_broken_seq: int | None = None
    reason: str = ""

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def verify_chain(db: Database, batch: int = 2000, progress=None) -> ChainReport:
    """Walks every event in order; reports the first one whose link or hash does not hold."""
    prev_hash, expected_seq, count = GENESIS, 1, 0
    total = None
    if progress is not None:
        with db.session_scope() as session:
            total = session.scalar(sa.select(sa.func.count(AuditEvent.id))) or 0
    last_seq = 0
    with db.session_scope() as session:
        while True:
            rows = session.scalars(
                sa.select(AuditEvent).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(batch)
            ).all()
            if not rows:
                break
            for ev in rows:
                count += 1
                if ev.seq != expected_seq:
                    return ChainReport(False, count, ev.id, ev.seq,
                                       f"event seq {expected_seq} is missing (next found: {ev.seq})")
                if ev.prev_hash != prev_hash:
                    return ChainReport(False, count, ev.id, ev.seq, "link to the previous event does not match")
                if event_hash(ev) != ev.hash:
                    return ChainReport(False, count, ev.id, ev.seq, "content does not match its hash")
                prev_hash, expected_seq, last_seq = ev.hash, ev.seq + 1, ev.seq
            if progress is not None and total:
                progress(min(99, int(100 * count / total)), f"{count}/{total} events checked")
    return ChainReport(True, count)
