"""Delegations: a subject lets another account generate with their likeness, for chosen modalities
and purposes, until a date or until revoked. A delegation never reaches beyond the subject's own
consent (the gate checks both at every use), and creating one needs a recent log-in."""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from avatar.domain import DomainError, NotFound
from avatar.domain.accounts import normalize_email
from avatar.domain.actor import Actor, audit
from avatar.domain.challenges import PURPOSES_LABELS
from avatar.domain.gate import MODALITY_SCOPES, RECENT_AUTH, ReauthRequired
from avatar.store.db import utcnow
from avatar.store.models import Consent, Delegation, Enrollment, User
from avatar.store.models import EnrollmentState as S

MAX_DAYS = 365


def _consent(session: Session, subject: User) -> Consent | None:
    return session.scalar(sa.select(Consent).join(Enrollment, Enrollment.id == Consent.enrollment_id).where(
        Consent.user_id == subject.id, Consent.revoked_at.is_(None), Enrollment.state == S.APPROVED.value)
        .order_by(Consent.id.desc()).limit(1))


def create(session: Session, subject: User, delegate_email: str, modalities: list[str], purposes: list[str],
           days: int, authenticated_at: datetime | None, now: datetime | None = None, *, by: Actor) -> Delegation:
    """A delegation within the subject's own consent, audited in the same transaction."""
    now = now or utcnow()
    if authenticated_at is None or now - authenticated_at > RECENT_AUTH:
        raise ReauthRequired("Confirm your password to delegate your likeness (your last log-in is over 15 minutes old).")
    delegate = session.scalar(sa.select(User).where(User.email == normalize_email(delegate_email or "")))
    if delegate is None or not delegate.is_active:
        raise DomainError("A delegation can only go to an active account: check the email, or ask the person to "
                          "register first.")
    if delegate.id == subject.id:
        raise DomainError("You can always use your own likeness; delegate to someone else.")
    modalities, purposes = sorted(set(modalities)), sorted(set(purposes))
    if not modalities or not set(modalities) <= set(MODALITY_SCOPES):
        raise DomainError("Choose speech, video or both.")
    if not purposes or not set(purposes) <= set(PURPOSES_LABELS):
        raise DomainError("Choose at least one purpose.")
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise DomainError(f"A delegation lasts 1 to {MAX_DAYS} days.")
    consent = _consent(session, subject)
    if consent is None:
        raise DomainError("You need an approved likeness with consent before you can delegate it.")
    uncovered = [m for m in modalities if not set(MODALITY_SCOPES[m]) <= set(consent.scopes)]
    uncovered += [p for p in purposes if p not in consent.purposes]
    if uncovered:
        raise DomainError(f"Your own consent does not cover {', '.join(uncovered)}; a delegation cannot go beyond it.")
    expires = min(now + timedelta(days=days), consent.expires_at)
    row = Delegation(subject_id=subject.id, delegate_id=delegate.id, modalities=modalities, purposes=purposes,
                     created_at=now, expires_at=expires)
    session.add(row)
    session.flush()
    audit(session, by, "delegation.created", target_type="delegation", target_id=row.id,
          details={"delegate": row.delegate_id, "modalities": row.modalities, "purposes": row.purposes,
                   "expires_at": row.expires_at.isoformat()})
    return row


def revoke(session: Session, subject: User, delegation_id: int, now: datetime | None = None, *,
           by: Actor) -> Delegation:
    """Ends a delegation at once (audited); jobs it started stop at their next gate check."""
    row = session.get(Delegation, delegation_id)
    if row is None or row.subject_id != subject.id:
        raise NotFound("No such delegation.")
    if row.revoked_at is None:
        row.revoked_at = now or utcnow()
        audit(session, by, "delegation.revoked", target_type="delegation", target_id=row.id,
              details={"delegate": row.delegate_id})
    return row


def given_by(session: Session, subject_id: int) -> list[Delegation]:
    return list(session.scalars(sa.select(Delegation).where(Delegation.subject_id == subject_id)
                                .order_by(Delegation.id.desc())))


def received_by(session: Session, delegate_id: int) -> list[Delegation]:
    return list(session.scalars(sa.select(Delegation).where(Delegation.delegate_id == delegate_id)
                                .order_by(Delegation.id.desc())))


def active(row: Delegation, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > now)
