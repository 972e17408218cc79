"""Housekeeping jobs: audit chain verification, purge of expired media, sweep of orphaned blobs."""
from __future__ import annotations

import sqlalchemy as sa

from avatar.domain import webhooks
from avatar.domain.actor import Actor, audit
from avatar.domain.idempotency import WINDOW as KEY_WINDOW
from avatar.jobs.core import JobContext, job
from avatar.store import audit as chain
from avatar.store.db import utcnow
from avatar.store.models import IdempotencyKey, MediaObject


@job("audit.verify")
def verify_audit_chain(ctx: JobContext) -> dict:
    ctx.progress(1, "checking the audit chain")
    report = chain.verify_chain(ctx.services.db, progress=ctx.progress)
    return report.as_dict()


@job("media.purge_expired")
def purge_expired_media(ctx: JobContext) -> dict:
    """Deletes media whose expiry has passed (generated outputs are given one), one transaction per
    item with its audit event, progress reported between them (progress writes in a session of its
    own: called while a deletion is uncommitted, it would wait on that deletion's lock on SQLite)."""
    db, media, actor = ctx.services.db, ctx.services.media, Actor.job(ctx.job_id)
    with db.session_scope() as s:
        ids = s.scalars(sa.select(MediaObject.id).where(
            MediaObject.expires_at < utcnow(), MediaObject.deleted_at.is_(None))).all()
    purged = 0
    for i, media_id in enumerate(ids):
        if i % 20 == 0:
            ctx.progress(int(100 * i / len(ids)), f"{i}/{len(ids)} purged")
        with db.session_scope() as s:
            obj = s.get(MediaObject, media_id)
            if obj is not None and obj.deleted_at is None:
                media.delete(s, obj)
                audit(s, actor, "media.purged", target_type="media", target_id=media_id,
                      details={"kind": obj.kind, "subject": obj.subject_id})
                purged += 1
    with db.session_scope() as s:  # idempotency keys outlive their window, old deliveries theirs, until here
        keys = s.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - KEY_WINDOW)).rowcount
        deliveries = webhooks.purge_finished(s)
    return {"purged": purged, "idempotency_keys_expired": keys, "webhook_deliveries_expired": deliveries}


@job("media.sweep_orphans")
def sweep_orphan_blobs(ctx: JobContext) -> dict:
    """Deletes blobs that no media row names once they are an hour old (see MediaStore.sweep_orphans)."""
    ctx.progress(1, "listing the media store")
    with ctx.services.db.session_scope() as s:
        result = ctx.services.media.sweep_orphans(s)
        if result["deleted"]:
            audit(s, Actor.job(ctx.job_id), "media.orphans_swept", details=result)
    return result


@job("consent.expire")
def expire_consents_job(ctx: JobContext) -> dict:
    """Revokes, as expired, every approved likeness whose consent has run out (periodic)."""
    from avatar.domain.review import expire_consents

    with ctx.services.db.session_scope() as s:
        ids = expire_consents(s, ctx.services.media, by=Actor.job(ctx.job_id))
    return {"expired": ids}
