"""Review decisions and revocation: who may be cloned, accountably."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from avatar.domain import Conflict, DomainError, Forbidden, NotFound, webhooks
from avatar.domain.actor import Actor, audit
from avatar.domain.enrollment import transition
from avatar.store.db import utcnow
from avatar.store.media import MediaStore
from avatar.store.models import (
    Consent,
    Enrollment,
    Generation,
    Job,
    JobState,
    Review,
    Role,
    User,
)
from avatar.store.models import (
    EnrollmentState as S,
)

MIN_REASON = 10


def queue(session: Session) -> list[Enrollment]:
    """Submitted enrollments, oldest first."""
    return session.scalars(sa.select(Enrollment).where(Enrollment.state == S.SUBMITTED.value)
                           .order_by(Enrollment.submitted_at, Enrollment.id)).all()


def decide(session: Session, reviewer: User, enrollment_id: int, decision: str, reason: str, *, by: Actor) -> Review:
    """Approves or rejects a submitted enrollment (audited as review.approve / review.reject). A
    reason is required; nobody reviews their own (or an enrollment they recorded on site);
    decisions are final."""
    if not reviewer.has_role(Role.REVIEWER, Role.ADMIN):
        raise Forbidden("Only reviewers decide enrollments.")
    enr = session.get(Enrollment, enrollment_id)
    if enr is None:
        raise NotFound("No such enrollment.")
    if enr.user_id == reviewer.id or enr.assisted_by_id == reviewer.id:
        raise Forbidden("You cannot review an enrollment of your own or one you recorded.")
    if decision not in ("approve", "reject"):
        raise DomainError("Decide approve or reject.")
    reason = " ".join((reason or "").split())
    if len(reason) < MIN_REASON:
        raise DomainError(f"Give a reason (at least {MIN_REASON} characters).")
    if enr.state != S.SUBMITTED.value:
        raise Conflict(f"This enrollment is {enr.state}; decisions are final.")
    transition(enr, S.APPROVED if decision == "approve" else S.REJECTED)
    enr.decided_at = utcnow()
    review = Review(enrollment_id=enr.id, reviewer_id=reviewer.id, decision=decision, reason=reason)
    session.add(review)
    session.flush()
    audit(session, by, f"review.{decision}", target_type="enrollment", target_id=enr.id, details={"reason": reason})
    webhooks.emit(session, "enrollment.decided", {"enrollment_id": enr.id, "state": enr.state}, [enr.user_id])
    return review


def revoke(session: Session, media: MediaStore, actor: User | None, subject_id: int, reason: str,
           to: S = S.REVOKED, *, by: Actor) -> dict:
    """Withdraws a subject's likeness: the approved enrollment becomes revoked (or expired), their
    consents end, queued and running generation jobs are cancelled, outputs are marked revoked and
    deleted, and the subject's data key is destroyed, so none of their media can be read again.
    The subject may do it themselves; otherwise only an admin, or the system (actor None) when
    consent expires. Unless the system acts, every session of the subject's account ends. Audited
    in the same transaction as enrollment.revoked (enrollment.expired when consent ran out)."""
    if actor is not None and actor.id != subject_id and not actor.has_role(Role.ADMIN):
        raise Forbidden("Only the person or an admin can revoke.")
    now = utcnow()
    enrollments = session.scalars(sa.select(Enrollment).where(
        Enrollment.user_id == subject_id, Enrollment.state.notin_([S.REVOKED.value, S.REJECTED.value, S.EXPIRED.value]))).all()
    for enr in enrollments:
        if enr.state == S.APPROVED.value:
            transition(enr, to)
        else:  # not yet approved: withdrawing ends it as rejected by the subject
            enr.state = S.REJECTED.value if to == S.REVOKED else to.value
        enr.revoked_at = now
        if actor is None or actor.id != subject_id:
            session.add(Review(enrollment_id=enr.id, reviewer_id=actor.id if actor else None, decision="revoke",
                               reason=reason))
    session.execute(sa.update(Consent).where(Consent.user_id == subject_id, Consent.revoked_at.is_(None))
                    .values(revoked_at=now))
    cancelled = session.execute(sa.update(Job).where(
        Job.subject_id == subject_id, Job.state == JobState.QUEUED.value).values(
        state=JobState.CANCELLED.value, cancel_requested=True, finished_at=now, message="cancelled: consent revoked")).rowcount
    stopping = session.execute(sa.update(Job).where(
        Job.subject_id == subject_id, Job.state == JobState.RUNNING.value).values(cancel_requested=True)).rowcount
    outputs = session.execute(sa.select(Generation.id, Generation.requester_id).where(
        Generation.subject_id == subject_id, Generation.revoked_at.is_(None))).all()
    revoked_outputs = session.execute(sa.update(Generation).where(
        Generation.subject_id == subject_id, Generation.revoked_at.is_(None)).values(revoked_at=now)).rowcount
    shredded = media.shred_subject(session, subject_id)
    subject = session.get(User, subject_id)
    if actor is not None and subject is not None:  # a withdrawal ends the account's sessions too
        subject.end_sessions()
    session.flush()
    out = {"enrollments": len(enrollments), "jobs_cancelled": cancelled, "jobs_stopping": stopping,
           "outputs_revoked": revoked_outputs, "media_shredded": shredded}
    who = "system" if actor is None else "subject" if actor.id == subject_id else "admin"
    audit(session, by, "enrollment.expired" if to == S.EXPIRED else "enrollment.revoked", target_type="user",
          target_id=subject_id, details={"by": who, "reason": reason, **out})
    _tell_receivers(session, subject_id, to, outputs)
    return out


def _tell_receivers(session: Session, subject_id: int, to: S, outputs) -> None:
    """Webhooks after a withdrawal or expiry: what was still undelivered about this likeness is
    cancelled; the subject and their delegates hear that consent ended, and each revoked
    generation's requester and subject that it was revoked."""
    webhooks.cancel_for_subject(session, subject_id)
    state = "expired" if to == S.EXPIRED else "withdrawn"
    webhooks.emit(session, f"consent.{state}", {"subject_id": subject_id, "state": state},
                  [subject_id, *webhooks.delegates_of(session, subject_id)])
    for gen_id, requester_id in outputs:
        webhooks.emit(session, "generation.revoked", {"generation_id": gen_id, "subject_id": subject_id,
                                                      "state": "revoked"}, [requester_id, subject_id])


def expire_consents(session: Session, media: MediaStore, *, by: Actor) -> list[int]:
    """Revokes (as expired, each audited) every subject whose consent has run out. Returns their ids."""
    now = utcnow()
    ids = session.scalars(sa.select(Consent.user_id).distinct().join(Enrollment, Enrollment.id == Consent.enrollment_id)
                          .where(Consent.expires_at < now, Consent.revoked_at.is_(None),
                                 Enrollment.state == S.APPROVED.value)).all()
    for uid in ids:
        revoke(session, media, None, uid, "consent expired", to=S.EXPIRED, by=by)
    return list(ids)
