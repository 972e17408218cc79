"""In-person (assisted) enrollment: an admin attests to the ID check and records the person on the
admin's device; the same liveness and consent checks run; the admin cannot review it."""
import json

import pytest
import sqlalchemy as sa

from avatar.domain import DomainError, Forbidden, review
from avatar.domain import enrollment as rules
from avatar.domain.actor import Actor
from avatar.store import audit
from avatar.store.models import AuditEvent, Enrollment, FaceProfile, Role, User
from tests.conftest import SEED, STRONG_PASSWORD, csrf_token
from tests.support.enrollment import give_consent, login, run_capture

pytestmark = pytest.mark.app_config(CHALLENGE_SEED=SEED)


def _start(client, email, document_type="passport", last4="X123", attest=True):
    data = {"csrf_token": csrf_token(client, "/admin/assisted"), "email": email, "document_type": document_type,
            "last4": last4}
    if attest:
        data["attest"] = "y"
    return client.post("/admin/assisted", data=data)


def _accounts(services):
    from avatar.domain.accounts import register

    with services.db.session_scope() as s:
        person = register(s, "walkin@example.org", "Walk In", STRONG_PASSWORD).id
        reviewer = register(s, "rev@example.org", "Re Viewer", STRONG_PASSWORD, role=Role.REVIEWER).id
    return person, reviewer


def test_attestation_is_checked(client, services):
    person, _ = _accounts(services)
    login(client, services, "studio@example.org", "Studio Admin")
    assert _start(client, "walkin@example.org").status_code == 403  # not an admin
    with services.db.session_scope() as s:
        s.scalar(sa.select(User).where(User.email == "studio@example.org")).role = "admin"
    assert _start(client, "walkin@example.org", attest=False).status_code == 400
    r = _start(client, "walkin@example.org", last4="12")
    assert r.status_code == 400
    r = _start(client, "walkin@example.org", last4="12 4")
    assert r.status_code == 400 and b"last 4" in r.data
    assert _start(client, "walkin@example.org", document_type="selfie").status_code == 400
    r = _start(client, "nobody@example.org")
    assert r.status_code == 400 and b"registers first" in r.data
    assert _start(client, "studio@example.org").status_code == 400  # not for oneself
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(sa.func.count(Enrollment.id))) == 0
    r = _start(client, "walkin@example.org", document_type="national_id", last4="ab12")
    assert r.status_code == 303 and r.headers["Location"].endswith("/enroll/capture")
    page = client.get("/enroll/capture").get_data(as_text=True)
    assert 'id="assisted-banner"' in page and "Walk In" in page
    with services.db.session_scope() as s:
        enr = s.scalar(sa.select(Enrollment))
        assert (enr.user_id, enr.id_document_type, enr.id_document_last4, enr.flags) == (
            person, "national_id", "AB12", ["assisted"])
        event = s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "enrollment.assisted_started"))
        assert json.loads(event.details) == {"via": "web", "subject": person, "document_type": "national_id",
                                             "document_last4": "AB12", "attested": True}
    r = client.post("/admin/assisted/end", data={"csrf_token": csrf_token(client, "/enroll")})
    assert r.status_code == 303
    assert 'id="assisted-banner"' not in client.get("/enroll/capture").get_data(as_text=True)


def test_only_admins_start_assisted_enrollments(services):
    person, reviewer = _accounts(services)
    with services.db.session_scope() as s:
        with pytest.raises(Forbidden):
            rules.start_assisted(s, s.get(User, reviewer), s.get(User, person), "passport", "1234", by=Actor("web"))
        with pytest.raises(DomainError, match="someone else"):
            admin = s.get(User, reviewer)
            admin.role = "admin"
            rules.start_assisted(s, admin, admin, "passport", "1234", by=Actor("web"))


@pytest.mark.slow
def test_assisted_enrollment_runs_the_same_checks_and_the_recorder_cannot_review(client, services, passing_clip,
                                                                                 attack_clips):
    person, reviewer = _accounts(services)
    admin = login(client, services, "studio@example.org", "Studio Admin")
    with services.db.session_scope() as s:
        s.get(User, admin).role = "admin"
    assert _start(client, "walkin@example.org").status_code == 303
    # the same liveness checks: an attack fails, on the person's enrollment
    bad = run_capture(client, services, attack_clips["still image"].read_bytes())
    assert bad["passed"] is False
    assert run_capture(client, services, passing_clip)["passed"]
    page = client.get("/enroll/consent").get_data(as_text=True)
    assert "I, Walk In, consent" in page
    r = give_consent(client)
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/users")
    with services.db.session_scope() as s:
        enr = s.scalar(sa.select(Enrollment).where(Enrollment.user_id == person))
        assert enr.state == "submitted" and enr.assisted_by_id == admin and enr.failed_attempts == 1
        assert {"assisted", "failures_before_pass"} <= set(enr.flags)
        assert s.scalar(sa.select(FaceProfile.user_id).where(FaceProfile.enrollment_id == enr.id)) == person
        assert s.scalar(sa.select(sa.func.count(Enrollment.id)).where(Enrollment.user_id == admin)) == 0
        consented = s.scalar(sa.select(AuditEvent).where(AuditEvent.action == "enrollment.consented"))
        details = json.loads(consented.details)
        assert details["witnessed_by"] == admin and details["subject"] == person
        with pytest.raises(Forbidden, match="recorded"):
            review.decide(s, s.get(User, admin), enr.id, "approve", "I saw them myself", by=Actor("web", user_id=admin))
        enr_id = enr.id
    page = client.get(f"/review/{enr_id}").get_data(as_text=True)
    assert "recorded in person by Studio Admin" in page and "X123" in page
    with services.db.session_scope() as s:
        review.decide(s, s.get(User, reviewer), enr_id, "approve", "capture clear, ID attested in person", by=Actor("web", user_id=reviewer))
        assert s.get(Enrollment, enr_id).state == "approved"
    assert audit.verify_chain(services.db).ok
