"""A person's own data: export everything stored about them; delete the account."""
from __future__ import annotations

import io
import json
import zipfile

import sqlalchemy as sa
from sqlalchemy.orm import Session

from avatar.domain import DomainError, webhooks
from avatar.domain.actor import Actor, audit
from avatar.domain.passwords import verify_password
from avatar.store.media import MediaShredded, MediaStore
from avatar.store.models import (
    AuditEvent,
    Consent,
    Enrollment,
    Generation,
    Job,
    LivenessSession,
    MediaObject,
    Review,
    User,
    WebhookEndpoint,
)

EXTENSIONS = {"image/png": "png", "audio/wav": "wav", "video/mp4": "mp4", "video/webm": "webm",
              "application/x-npy": "npy", "audio/webm": "webm", "image/jpeg": "jpg"}


def _row(obj) -> dict:
    out = {}
    for col in obj.__table__.columns:
        v = getattr(obj, col.name)
        if col.name in {"password_hash", "wrapped_key"}:
            continue
        out[col.name] = v.isoformat() + "Z" if hasattr(v, "isoformat") else v
    return out


def export_zip(session: Session, media: MediaStore, user: User) -> bytes:
    """data.json (account, enrollments, challenges, consents, reviews, generations, jobs, audit
    events about them) and every medium still readable, decrypted, under media/."""
    uid = user.id
    enrollments = session.scalars(sa.select(Enrollment).where(Enrollment.user_id == uid)).all()
    enr_ids = [e.id for e in enrollments]
    data = {
        "account": _row(user),
        "enrollments": [_row(e) for e in enrollments],
        "liveness_sessions": [_row(x) for x in session.scalars(
            sa.select(LivenessSession).where(LivenessSession.enrollment_id.in_(enr_ids)))],
        "consents": [_row(x) for x in session.scalars(sa.select(Consent).where(Consent.user_id == uid))],
        "reviews": [{k: v for k, v in _row(x).items() if k != "reviewer_id"} for x in session.scalars(
            sa.select(Review).where(Review.enrollment_id.in_(enr_ids)))],
        "generations": [_row(x) for x in session.scalars(sa.select(Generation).where(Generation.subject_id == uid))],
        "jobs": [_row(x) for x in session.scalars(sa.select(Job).where(Job.owner_id == uid))],
        "webhook_endpoints": [_row(x) for x in session.scalars(sa.select(WebhookEndpoint).where(
            WebhookEndpoint.user_id == uid))],  # URLs and events; a secret is never stored
        "audit_events": [_row(x) for x in session.scalars(sa.select(AuditEvent).where(
            sa.or_(AuditEvent.actor_id == uid, sa.and_(AuditEvent.target_type == "user", AuditEvent.target_id == uid)))
            .order_by(AuditEvent.seq))],
        "media": [],
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for obj in session.scalars(sa.select(MediaObject).where(MediaObject.subject_id == uid,
                                                                MediaObject.deleted_at.is_(None))):
            entry = _row(obj)
            try:
                name = f"media/{obj.id}-{obj.kind}.{EXTENSIONS.get(obj.content_type, 'bin')}"
                z.writestr(name, media.get(session, obj))
                entry["file"] = name
            except MediaShredded:
                entry["file"] = None
            data["media"].append(entry)
        z.writestr("data.json", json.dumps(data, indent=2, default=str))
    return buf.getvalue()


def delete_account(session: Session, media: MediaStore, user: User, password: str, *, by: Actor) -> str:
    """Deletes the account after the password is confirmed: likeness revoked and shredded, rows
    removed (the audit trail keeps only ids and the pseudonym; the revocation and the deletion are
    audited in the same transaction). Returns the pseudonym."""
    from avatar.domain.review import revoke

    if not verify_password(user.password_hash, password or ""):
        raise DomainError("Confirm with your password to delete your account.")
    webhooks.delete_all(session, user.id)  # nothing more is sent to the account's endpoints
    revoke(session, media, user, user.id, "account deleted by the person", by=by)  # also destroys the data key
    pseudonym, uid = user.pseudonym, user.id
    session.execute(sa.update(Job).where(Job.owner_id == user.id).values(payload={}))
    session.delete(user)
    session.flush()
    audit(session, by, "account.deleted", target_type="user", target_id=uid, details={"pseudonym": pseudonym})
    return pseudonym
