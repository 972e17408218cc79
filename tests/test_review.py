"""Decisions and revocation rules, with a running job stopped and media shredded."""
import threading
import time

import pytest
import sqlalchemy as sa

from avatar.domain import Conflict, DomainError, Forbidden, review
from avatar.domain.accounts import register
from avatar.domain.actor import Actor
from avatar.jobs import JobContext, enqueue, job
from avatar.jobs.runners import ThreadRunner
from avatar.store import audit
from avatar.store.blobs import BlobNotFound
from avatar.store.crypto import DecryptionError, open_sealed
from avatar.store.models import Enrollment, Generation, Job, MediaObject, Role, SubjectKey, User
from tests.conftest import STRONG_PASSWORD, wait_for_jobs

STARTED = threading.Event()


@job("test.fake_render")
def long_render(ctx: JobContext):
    STARTED.set()
    for i in range(200):
        ctx.progress(i // 2, "rendering")
        time.sleep(0.05)
    return {"delivered": True}


def _users(services):
    with services.db.session_scope() as s:
        subject = register(s, "subject@example.org", "Sub Ject", STRONG_PASSWORD)
        rev = register(s, "rev@example.org", "Re Viewer", STRONG_PASSWORD, role=Role.REVIEWER)
        admin = register(s, "boss@example.org", "Ad Min", STRONG_PASSWORD, role=Role.ADMIN)
        enr = Enrollment(user_id=subject.id, state="submitted")
        s.add(enr)
        s.flush()
        return subject.id, rev.id, admin.id, enr.id


def test_decisions_need_a_reviewer_a_reason_and_are_final(services):
    subject, rev, admin, enr = _users(services)
    with services.db.session_scope() as s:
        with pytest.raises(Forbidden):
            review.decide(s, s.get(User, subject), enr, "approve", "looks fine to me", by=Actor("web", user_id=subject))
        with pytest.raises(DomainError, match="reason"):
            review.decide(s, s.get(User, rev), enr, "approve", "ok", by=Actor("web", user_id=rev))
        review.decide(s, s.get(User, rev), enr, "approve", "clear capture, no guard match", by=Actor("web", user_id=rev))
    with services.db.session_scope() as s:
        assert s.get(Enrollment, enr).state == "approved"
        with pytest.raises(Conflict, match="final"):
            review.decide(s, s.get(User, admin), enr, "reject", "changed my mind later", by=Actor("web", user_id=admin))


def test_nobody_reviews_their_own_enrollment(services):
    subject, rev, admin, _ = _users(services)
    with services.db.session_scope() as s:
        own = Enrollment(user_id=rev, state="submitted")
        s.add(own)
        s.flush()
        with pytest.raises(Forbidden, match="own"):
            review.decide(s, s.get(User, rev), own.id, "approve", "it is me, trust me", by=Actor("web", user_id=rev))


def test_revocation_stops_a_running_job_and_shreds_media(services):
    subject, rev, admin, enr = _users(services)
    with services.db.session_scope() as s:
        review.decide(s, s.get(User, rev), enr, "approve", "clear capture, no guard match", by=Actor("web", user_id=rev))
        obj = services.media.put(s, subject, "output", b"generated video bytes" * 100, "video/mp4")
        s.add(Generation(subject_id=subject, modality="video", purpose="personal", script="hi", backend="t",
                         watermark_id="wm-1", output_media_id=obj.id))
        key = obj.storage_key
    services.runner = ThreadRunner(services, threads=1, poll_seconds=0.2).start()
    try:
        job_id = enqueue(services, "test.fake_render", {}, owner_id=subject, subject_id=subject)
        queued = enqueue(services, "test.fake_render", {}, owner_id=subject, subject_id=subject)
        assert STARTED.wait(10)
        with services.db.session_scope() as s:
            out = review.revoke(s, services.media, s.get(User, subject), subject, "I withdraw my consent", by=Actor("web", user_id=subject))
        assert out["jobs_cancelled"] >= 1 and out["jobs_stopping"] == 1 and out["outputs_revoked"] == 1
        wait_for_jobs(services, [job_id], lambda row: row.state != "running", timeout=10, poll=0.1)
        with services.db.session_scope() as s:
            assert s.get(Job, job_id).state == "cancelled" and s.get(Job, job_id).result is None
            assert s.get(Job, queued).state == "cancelled"
            assert s.get(Enrollment, enr).state == "revoked"
            assert s.scalar(sa.select(SubjectKey.wrapped_key).where(SubjectKey.subject_id == subject)) is None
            assert s.scalar(sa.select(Generation.revoked_at)) is not None
    finally:
        services.runner.stop()
        services.runner = None
    with pytest.raises(BlobNotFound):
        services.media.blobs.read(key)
    audit.record(services.db, "enrollment.revoked", actor_id=subject, target_type="user", target_id=subject)
    assert audit.verify_chain(services.db).ok


def test_only_the_subject_or_an_admin_revokes(services):
    subject, rev, admin, enr = _users(services)
    with services.db.session_scope() as s:
        with pytest.raises(Forbidden):
            review.revoke(s, services.media, s.get(User, rev), subject, "not mine to revoke", by=Actor("web", user_id=rev))
        review.revoke(s, services.media, s.get(User, admin), subject, "court order received", by=Actor("web", user_id=admin))
        assert s.get(Enrollment, enr).state == "rejected"  # not yet approved: withdrawn


def test_raw_media_unreadable_after_revocation(services):
    subject, rev, admin, enr = _users(services)
    with services.db.session_scope() as s:
        obj = services.media.put(s, subject, "face_ref", b"\x89PNG reference" * 50, "image/png")
        key = obj.storage_key
    raw = services.media.blobs.read(key)
    with services.db.session_scope() as s:
        review.revoke(s, services.media, s.get(User, admin), subject, "admin revocation test", by=Actor("web", user_id=admin))
    with pytest.raises(DecryptionError):
        open_sealed(services.keyring.current, raw, key.encode())
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(SubjectKey.wrapped_key).where(SubjectKey.subject_id == subject)) is None
        assert s.scalar(sa.select(MediaObject.deleted_at).where(MediaObject.storage_key == key)) is not None


def test_review_and_revocation_routes(client, auth, services):
    from tests.conftest import csrf_token

    subject, rev, admin, enr = _users(services)
    assert client.get("/review").status_code == 302  # anonymous → login
    auth.login(email="subject@example.org")
    assert client.get("/review").status_code == 403
    assert client.get(f"/review/{enr}").status_code == 403
    auth.logout()
    auth.login(email="rev@example.org")
    assert "Sub Ject" in client.get("/review").get_data(as_text=True)
    token = csrf_token(client, f"/review/{enr}")
    bad = client.post(f"/review/{enr}", data={"csrf_token": token, "decision": "approve", "reason": "ok"})
    assert bad.status_code == 400
    good = client.post(f"/review/{enr}", data={"csrf_token": token, "decision": "approve",
                                                "reason": "clear capture and consent"})
    assert good.status_code == 303
    assert client.post("/admin/users/1/revoke", data={"csrf_token": token, "reason": "x" * 10}).status_code == 403
    auth.logout()
    auth.login(email="subject@example.org")
    page = client.get("/account").get_data(as_text=True)
    assert 'id="revoke"' in page
    resp = client.post("/account/revoke", data={"csrf_token": csrf_token(client, "/account")})
    assert resp.status_code == 303
    with services.db.session_scope() as s:
        assert s.get(Enrollment, enr).state == "revoked"
        actions = s.scalars(sa.select(audit.AuditEvent.action)).all()
    assert {"review.approve", "review.viewed", "enrollment.revoked"} <= set(actions)
    assert audit.verify_chain(services.db).ok


def test_expired_consent_is_revoked_by_the_periodic_job(services):
    from datetime import timedelta

    from avatar.jobs.core import execute
    from avatar.jobs.periodic import enqueue_periodic
    from avatar.store.db import utcnow
    from avatar.store.models import Consent

    subject, rev, admin, enr = _users(services)
    with services.db.session_scope() as s:
        review.decide(s, s.get(User, rev), enr, "approve", "clear capture and consent", by=Actor("web", user_id=rev))
        s.add(Consent(enrollment_id=enr, user_id=subject, scopes=["face"], purposes=["personal"], text_version="v",
                      text_sha256="0" * 64, text="t", expires_at=utcnow() - timedelta(minutes=1)))
        services.media.put(s, subject, "face_ref", b"face", "image/png")
    ids = enqueue_periodic(services)
    assert len(ids) == 3 and enqueue_periodic(services) == []  # not again within the period
    for job_id in ids:
        assert execute(services, job_id) == "succeeded"
    with services.db.session_scope() as s:
        assert s.get(Enrollment, enr).state == "expired"
        assert s.scalar(sa.select(SubjectKey.wrapped_key).where(SubjectKey.subject_id == subject)) is None
        assert s.scalar(sa.select(Job.result).where(Job.name == "consent.expire")) == {"expired": [subject]}
        assert s.scalar(sa.select(Job.result).where(Job.name == "media.sweep_orphans")) == {"checked": 0, "deleted": 0}


def test_export_and_delete_account(client, auth, services):
    import io
    import json
    import zipfile

    from tests.conftest import csrf_token

    subject, rev, admin, enr = _users(services)
    with services.db.session_scope() as s:
        obj = services.media.put(s, subject, "face_ref", b"\x89PNG my face", "image/png")
        key = obj.storage_key
    auth.login(email="subject@example.org")
    resp = client.get("/account/export")
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(resp.data))
    data = json.loads(z.read("data.json"))
    assert data["account"]["email"] == "subject@example.org" and "password_hash" not in data["account"]
    assert data["enrollments"][0]["id"] == enr
    files = [m["file"] for m in data["media"]]
    assert z.read(files[0]) == b"\x89PNG my face"
    token = csrf_token(client, "/account")
    wrong = client.post("/account/delete", data={"csrf_token": token, "password": "not-my-password-1"})
    assert wrong.status_code == 303
    with services.db.session_scope() as s:
        assert s.get(User, subject) is not None
    gone = client.post("/account/delete", data={"csrf_token": token, "password": STRONG_PASSWORD})
    assert gone.status_code == 303 and client.get("/account").status_code == 302
    with services.db.session_scope() as s:
        assert s.get(User, subject) is None and s.get(Enrollment, enr) is None
        assert s.scalar(sa.select(SubjectKey.wrapped_key).where(SubjectKey.subject_id == subject)) is None
        actions = s.scalars(sa.select(audit.AuditEvent.action)).all()
    assert "account.exported" in actions and "account.deleted" in actions
    with pytest.raises(BlobNotFound):
        services.media.blobs.read(key)
    assert audit.verify_chain(services.db).ok
