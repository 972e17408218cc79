"""Signed webhooks (issue 24): a receiver the test starts on a free port checks every signature
the Standard Webhooks way, sees retries after it answers 500, and after the subject withdraws
consent sees nothing but the revocation events; callback URLs that resolve to loopback, private
or link-local addresses are refused when registered and again when delivered."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from avatar.domain import generation, review
from avatar.domain import webhooks as rules
from avatar.domain.actor import Actor
from avatar.jobs import enqueue
from avatar.jobs import webhooks as delivery_jobs
from avatar.jobs.core import execute
from avatar.store.db import utcnow
from avatar.store.models import AuditEvent, Job, User, WebhookDelivery, WebhookEndpoint
from tests.conftest import csrf_token
from tests.likeness_factory import approved_likeness
from tests.support.webhooks import Receiver, verify

pytestmark = pytest.mark.app_config(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_RETRY_SECONDS="0,0,0")
SCRIPT = "Hello, this is a note for my sister. See you on Sunday."


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _token(client, scopes=("generations", "webhooks")) -> dict:
    r = client.post("/account/tokens", data={"csrf_token": csrf_token(client, "/account/tokens"), "name": "studio",
                                             "scope": list(scopes)})
    return {"Authorization": "Bearer " + re.search(r"(avt_[\w-]+)", r.get_data(as_text=True)).group(1)}


def _pending_jobs(services) -> list[int]:
    with services.db.session_scope() as s:
        return s.scalars(sa.select(Job.id).where(Job.name == rules.DELIVERY_JOB, Job.state == "queued")
                         .order_by(Job.id)).all()


def _deliver_all(services) -> None:
    """Runs delivery jobs until none is queued (each retry's wait is 0 in this module)."""
    for _ in range(20):
        ids = _pending_jobs(services)
        if not ids:
            return
        for job_id in ids:
            execute(services, job_id)
    raise AssertionError("deliveries still queued after 20 rounds")


def _generate(services, subject) -> tuple[int, int]:
    with services.db.session_scope() as s:
        gen = generation.request(s, services.gate, subject, subject, "speech", "personal", SCRIPT, utcnow(),
                                 "offline", by=Actor("web", user_id=subject))
        gen_id = gen.id
    return gen_id, enqueue(services, "generation.render", {"generation_id": gen_id}, owner_id=subject,
                           subject_id=subject, max_attempts=1)


@pytest.mark.slow
def test_signed_deliveries_retry_and_stop_after_revocation(client, auth, services, shared_data):
    subject = approved_likeness(services, shared_data, scopes=("voice",))
    auth.login("subject@example.org")
    api = client.application.test_client()
    headers = _token(client)
    hook = Receiver(answers=(500, 503, 200))
    try:
        r = api.post("/api/webhooks", json={"url": hook.url, "events": list(rules.EVENTS), "description": "studio"},
                     headers=headers)
        assert r.status_code == 201, r.get_json()
        secret, endpoint_id = r.get_json()["secret"], r.get_json()["endpoint"]["id"]
        assert secret.startswith("whsec_") and secret not in json.dumps(api.get("/api/webhooks", headers=headers).get_json())

        gen_id, job_id = _generate(services, subject)
        assert execute(services, job_id) == "succeeded"
        _deliver_all(services)
        assert len(hook.calls) == 3  # 500, 503, then 200: the same message three times
        assert len({c["headers"]["webhook-id"] for c in hook.calls}) == 1
        assert all(verify(secret, c["headers"], c["body"]) for c in hook.calls)
        assert not verify(rules.secret_for(b"\0" * 32, endpoint_id, 1), hook.calls[0]["headers"], hook.calls[0]["body"])
        assert hook.calls[0]["path"] == "/hooks/avatar?src=test"
        event = hook.events()[-1]
        assert event["type"] == "generation.ready"
        assert event["data"] == {"generation_id": gen_id, "job_id": job_id, "state": "ready", "modality": "speech"}
        info = api.get(f"/api/webhooks/{endpoint_id}", headers=headers).get_json()
        [delivery] = info["deliveries"]
        assert delivery["state"] == "delivered" and [a["status"] for a in delivery["attempts"]] == [500, 503, 200]
        assert "answered 500" in delivery["attempts"][0]["error"]

        # a second clip is still queued when the subject withdraws consent: it never becomes ready
        hook.calls.clear()
        _, queued_job = _generate(services, subject)
        with services.db.session_scope() as s:
            review.revoke(s, services.media, s.get(User, subject), subject, "I withdraw",
                          by=Actor("web", user_id=subject))
        assert execute(services, queued_job) is None  # cancelled by the withdrawal
        _deliver_all(services)
        types = sorted(e["type"] for e in hook.events())
        assert types == ["consent.withdrawn", "generation.revoked", "generation.revoked"], types
        assert all(verify(secret, c["headers"], c["body"]) for c in hook.calls)
        withdrawn = next(e for e in hook.events() if e["type"] == "consent.withdrawn")
        assert withdrawn["data"] == {"subject_id": subject, "state": "withdrawn"}
        for e in hook.events():  # ids and states, never media, scripts or names
            assert set(e) == {"type", "timestamp", "data"}
            assert not {"script", "url", "email", "name", "audio", "video"} & set(e["data"])
    finally:
        hook.close()


def test_a_failed_answer_is_retried_until_the_waits_are_spent(app, services, auth, client, receiver):
    """With the module's three waits: four attempts, then the delivery (and its job) failed."""
    receiver.answers = [500]
    auth.register()
    auth.login()
    user_id = _user_id(services, "ada@example.org")
    with services.db.session_scope() as s:
        endpoint = rules.create_endpoint(s, s.get(User, user_id), receiver.url, ["consent.withdrawn"], "",
                                         by=Actor("web", user_id=user_id), allow_private=True,
                                         resolve=delivery_jobs.resolve)
        rules.emit(s, "consent.withdrawn", {"subject_id": user_id, "state": "withdrawn"}, [user_id])
        endpoint_id = endpoint.id
    _deliver_all(services)
    assert len(receiver.calls) == 4
    with services.db.session_scope() as s:
        d = s.scalar(sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
        assert d.state == "failed" and len(d.attempts) == 4 and s.get(Job, d.job_id).state == "failed"
    page = client.get("/account/webhooks").get_data(as_text=True)
    assert "consent.withdrawn" in page and "answered 500" in page and "failed" in page


@pytest.mark.app_config(WEBHOOK_ALLOW_PRIVATE=False)
def test_private_loopback_and_link_local_urls_are_refused(client, auth, services):
    auth.register()
    auth.login()
    token = csrf_token(client, "/account/webhooks")
    refused = {
        "https://localhost/hook": "loopback",  # a DNS name that resolves to 127.0.0.1
        "https://127.0.0.1/hook": "loopback",
        "https://[::1]:8443/hook": "loopback",
        "https://[::ffff:127.0.0.1]/hook": "loopback",
        "https://10.1.2.3/hook": "private",
        "https://192.168.0.10/hook": "private",
        "https://169.254.169.254/latest/meta-data": "link-local",  # the cloud metadata address
        "https://[fe80::1]/hook": "link-local",
        "http://203.0.113.5/hook": "https://",
        "https://user:pw@93.184.215.14/hook": "user name",
        "https://no-such-host.invalid/hook": "cannot be resolved",
    }
    for url, why in refused.items():
        r = client.post("/api/webhooks", json={"url": url, "events": ["generation.ready"]},
                        headers={"X-CSRFToken": token})
        assert r.status_code == 422 and why in r.get_json()["error"], (url, r.get_json())
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint)) == 0
    assert rules.refusal(["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"], False) is None
    assert "private" in rules.refusal(["93.184.215.14", "10.0.0.1"], False)  # every address must pass


@pytest.mark.app_config(WEBHOOK_ALLOW_PRIVATE=False)
def test_an_address_that_changes_to_loopback_is_refused_at_delivery(client, auth, services, receiver, monkeypatch):
    """DNS rebinding: the name resolved to a public address when registered, to 127.0.0.1 when
    the delivery goes out: nothing reaches the loopback receiver, the attempt says why."""
    import avatar.web.webhooks as web_hooks

    auth.register()
    auth.login()
    monkeypatch.setattr(web_hooks, "resolve", lambda host, port: ["93.184.215.14"])
    r = client.post("/api/webhooks", json={"url": "https://hooks.example.com/x", "events": ["consent.withdrawn"]},
                    headers={"X-CSRFToken": csrf_token(client, "/account/webhooks")})
    assert r.status_code == 201, r.get_json()
    endpoint_id = r.get_json()["endpoint"]["id"]
    monkeypatch.setattr(delivery_jobs, "resolve", lambda host, port, timeout=3.0: ["127.0.0.1"])
    user_id = _user_id(services, "ada@example.org")
    with services.db.session_scope() as s:
        rules.emit(s, "consent.withdrawn", {"subject_id": user_id, "state": "withdrawn"}, [user_id])
    execute(services, _pending_jobs(services)[0])
    assert receiver.calls == []
    [d] = client.get(f"/api/webhooks/{endpoint_id}").get_json()["deliveries"]
    assert d["state"] == "pending" and "refused" in d["attempts"][0]["error"] and "loopback" in d["attempts"][0]["error"]


def test_rotation_signs_with_both_secrets_for_a_day(client, auth, services, receiver):
    auth.register()
    auth.login()
    csrf = {"X-CSRFToken": csrf_token(client, "/account/webhooks")}
    r = client.post("/api/webhooks", json={"url": receiver.url, "events": ["consent.withdrawn"]}, headers=csrf)
    old, endpoint_id = r.get_json()["secret"], r.get_json()["endpoint"]["id"]
    r = client.post(f"/api/webhooks/{endpoint_id}/rotate-secret", headers=csrf)
    new = r.get_json()["secret"]
    assert r.status_code == 200 and new != old and r.get_json()["endpoint"]["secret_version"] == 2
    user_id = _user_id(services, "ada@example.org")

    def send():
        with services.db.session_scope() as s:
            rules.emit(s, "consent.withdrawn", {"subject_id": user_id, "state": "withdrawn"}, [user_id])
        _deliver_all(services)
        return receiver.calls[-1]

    call = send()
    assert len(call["headers"]["webhook-signature"].split()) == 2
    assert verify(new, call["headers"], call["body"]) and verify(old, call["headers"], call["body"])
    with services.db.session_scope() as s:
        s.get(WebhookEndpoint, endpoint_id).previous_secret_until = utcnow() - timedelta(seconds=1)
    call = send()
    assert verify(new, call["headers"], call["body"]) and not verify(old, call["headers"], call["body"])
    with services.db.session_scope() as s:
        actions = s.scalars(sa.select(AuditEvent.action).where(AuditEvent.target_type == "webhook_endpoint")).all()
    assert actions == ["webhook.created", "webhook.secret_rotated"]


def test_endpoints_are_their_owners_and_deleting_one_cancels_what_is_pending(client, auth, services, receiver):
    auth.register()
    auth.login()
    page = client.post("/account/webhooks", data={"csrf_token": csrf_token(client, "/account/webhooks"),
                                                  "url": receiver.url, "event": ["enrollment.decided"]})
    secret = re.search(r"(whsec_[\w+/=]+)", page.get_data(as_text=True)).group(1)
    assert secret not in client.get("/account/webhooks").get_data(as_text=True)  # shown once
    endpoint_id = client.get("/api/webhooks").get_json()["endpoints"][0]["id"]
    user_id = _user_id(services, "ada@example.org")
    with services.db.session_scope() as s:
        rules.emit(s, "enrollment.decided", {"enrollment_id": 1, "state": "approved"}, [user_id])
        rules.emit(s, "consent.withdrawn", {"subject_id": user_id, "state": "withdrawn"}, [user_id])  # not wanted
        assert s.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 1

    token = _token(client, scopes=("generations",))  # without the webhooks scope
    assert client.application.test_client().get("/api/webhooks", headers=token).status_code == 403
    auth.logout()
    auth.register("eve@example.org", "Eve")
    auth.login("eve@example.org")
    csrf = {"X-CSRFToken": csrf_token(client, "/account/webhooks")}
    assert client.get(f"/api/webhooks/{endpoint_id}").status_code == 404
    assert client.delete(f"/api/webhooks/{endpoint_id}", headers=csrf).status_code == 404
    auth.logout()
    auth.login()
    r = client.delete(f"/api/webhooks/{endpoint_id}", headers={"X-CSRFToken": csrf_token(client, "/account/webhooks")})
    assert r.status_code == 204
    _deliver_all(services)
    assert receiver.calls == []
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(WebhookDelivery.state)) == "cancelled"
    assert client.get("/api/webhooks").get_json()["endpoints"] == []


def test_a_delivery_job_goes_to_the_runner_when_its_transaction_commits(app, services, auth, receiver):
    """The domain writes deliveries beside the action (an outbox); the embedded runner gets each
    delivery's job as soon as that transaction commits, and nothing from one rolled back."""
    from avatar.jobs.core import submit_on_commit
    from avatar.jobs.runners import ThreadRunner

    auth.register()
    user_id = _user_id(services, "ada@example.org")
    with services.db.session_scope() as s:
        rules.create_endpoint(s, s.get(User, user_id), receiver.url, ["consent.withdrawn"], "",
                              by=Actor("web", user_id=user_id), allow_private=True, resolve=delivery_jobs.resolve)
    services.runner = ThreadRunner(services, threads=1, poll_seconds=3600).start()  # no poller help
    submit_on_commit(services)
    try:
        with pytest.raises(RuntimeError), services.db.session_scope() as s:
            rules.emit(s, "consent.withdrawn", {"subject_id": user_id, "state": "withdrawn"}, [user_id])
            raise RuntimeError("the action fails after the event was written")
        with services.db.session_scope() as s:
            rules.emit(s, "consent.withdrawn", {"subject_id": user_id, "state": "expired"}, [user_id])
        from tests.conftest import wait_for_jobs

        with services.db.session_scope() as s:
            ids = s.scalars(sa.select(Job.id).where(Job.name == rules.DELIVERY_JOB)).all()
        wait_for_jobs(services, ids, timeout=30)
    finally:
        services.runner.stop()
        services.runner = None
    assert [e["data"]["state"] for e in receiver.events()] == ["expired"]


def _user_id(services, email) -> int:
    with services.db.session_scope() as s:
        return s.scalar(sa.select(User.id).where(User.email == email))


def test_finished_deliveries_are_kept_thirty_days(services, auth, receiver):
    """The daily purge deletes finished deliveries older than 30 days, never a pending one."""

    auth.register()
    user_id = _user_id(services, "ada@example.org")
    with services.db.session_scope() as s:
        rules.create_endpoint(s, s.get(User, user_id), receiver.url, ["consent.withdrawn"], "",
                              by=Actor("web", user_id=user_id), allow_private=True, resolve=delivery_jobs.resolve)
        for _ in range(3):
            rules.emit(s, "consent.withdrawn", {"subject_id": user_id, "state": "withdrawn"}, [user_id])
    execute(services, _pending_jobs(services)[0])  # one delivered, two still pending
    with services.db.session_scope() as s:
        for d in s.scalars(sa.select(WebhookDelivery)):
            d.created_at = utcnow() - timedelta(days=31)
    job_id = enqueue(services, "media.purge_expired")
    assert execute(services, job_id) == "succeeded"
    with services.db.session_scope() as s:
        assert s.get(Job, job_id).result["webhook_deliveries_expired"] == 1
        assert s.scalars(sa.select(WebhookDelivery.state)).all() == ["pending", "pending"]


def test_the_export_lists_endpoints_and_deleting_the_account_sends_nothing_more(client, auth, services, receiver):
    import io
    import zipfile

    from tests.conftest import STRONG_PASSWORD

    auth.register()
    auth.login()
    r = client.post("/api/webhooks", json={"url": receiver.url, "events": list(rules.EVENTS)},
                    headers={"X-CSRFToken": csrf_token(client, "/account/webhooks")})
    secret = r.get_json()["secret"]
    export = client.get("/account/export")
    data = zipfile.ZipFile(io.BytesIO(export.data)).read("data.json").decode()
    assert receiver.url in json.loads(data)["webhook_endpoints"][0]["url"] and secret not in data
    r = client.post("/account/delete", data={"csrf_token": csrf_token(client, "/account"), "password": STRONG_PASSWORD})
    assert r.status_code in (302, 303)
    _deliver_all(services)
    assert receiver.calls == []  # not even its own consent.withdrawn: the endpoints went first
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint)) == 0


@pytest.mark.slow
def test_a_generation_that_fails_is_told_to_its_requester_and_subject(services, shared_data, auth, receiver):
    """A delegate's clip whose delegation is revoked before it renders fails for good; both the
    delegate (who asked) and the subject hear generation.failed."""
    from avatar.domain import delegations

    subject = approved_likeness(services, shared_data, scopes=("voice",))
    auth.register("del@example.org", "Del Egate")
    delegate = _user_id(services, "del@example.org")
    with services.db.session_scope() as s:
        for user_id in (subject, delegate):
            rules.create_endpoint(s, s.get(User, user_id), receiver.url, ["generation.failed"], str(user_id),
                                  by=Actor("web", user_id=user_id), allow_private=True, resolve=delivery_jobs.resolve)
        delegation_id = delegations.create(s, s.get(User, subject), "del@example.org", ["speech"], ["personal"], 7,
                                           utcnow(), by=Actor("web", user_id=subject)).id
    with services.db.session_scope() as s:
        gen = generation.request(s, services.gate, delegate, subject, "speech", "personal", SCRIPT, utcnow(),
                                 "offline", by=Actor("web", user_id=delegate))
        gen_id = gen.id
    job_id = enqueue(services, "generation.render", {"generation_id": gen_id}, owner_id=delegate, subject_id=subject,
                     max_attempts=1)
    with services.db.session_scope() as s:
        delegations.revoke(s, s.get(User, subject), delegation_id, by=Actor("web", user_id=subject))
    assert execute(services, job_id) == "failed"
    _deliver_all(services)
    assert [e["type"] for e in receiver.events()] == ["generation.failed"] * 2
    assert {e["data"]["generation_id"] for e in receiver.events()} == {gen_id}


def test_a_review_decision_is_told_to_the_person(services, auth, receiver):
    from avatar.store.models import Enrollment

    auth.register()
    person = _user_id(services, "ada@example.org")
    reviewer = auth.create("rev@example.org", role="reviewer")
    with services.db.session_scope() as s:
        rules.create_endpoint(s, s.get(User, person), receiver.url, ["enrollment.decided"], "",
                              by=Actor("web", user_id=person), allow_private=True, resolve=delivery_jobs.resolve)
        enr = Enrollment(user_id=person, state="submitted", submitted_at=utcnow())
        s.add(enr)
        s.flush()
        review.decide(s, s.get(User, reviewer), enr.id, "reject", "The capture shows a printed photo.",
                      by=Actor("web", user_id=reviewer))
        enrollment_id = enr.id
    _deliver_all(services)
    [event] = receiver.events()
    assert event["type"] == "enrollment.decided"
    assert event["data"] == {"enrollment_id": enrollment_id, "state": "rejected"}  # the reason stays on the page


@pytest.mark.app_config(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_RETRY_SECONDS="0", WEBHOOK_TIMEOUT_SECONDS=0.5)
def test_a_receiver_that_trickles_its_answer_is_cut_off(services, auth):
    """Each byte comes within the read timeout, but the whole answer would never end: the attempt
    ends after twice the timeout and says so."""
    import socket
    import threading
    import time

    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle():
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while not stop.is_set():
            try:
                conn.sendall(b"a")
            except OSError:
                break
            time.sleep(0.2)
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    auth.register()
    user_id = _user_id(services, "ada@example.org")
    url = f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    try:
        with services.db.session_scope() as s:
            rules.create_endpoint(s, s.get(User, user_id), url, ["consent.withdrawn"], "",
                                  by=Actor("web", user_id=user_id), allow_private=True, resolve=delivery_jobs.resolve)
            rules.emit(s, "consent.withdrawn", {"subject_id": user_id, "state": "withdrawn"}, [user_id])
        started = time.monotonic()
        execute(services, _pending_jobs(services)[0])
        assert time.monotonic() - started < 5
    finally:
        stop.set()
        server.close()
    with services.db.session_scope() as s:
        [attempt] = s.scalar(sa.select(WebhookDelivery)).attempts
    assert attempt["status"] is None and "no complete answer within 1 s" in attempt["error"], attempt


@pytest.mark.app_config(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_RETRY_SECONDS="0.3")
def test_the_embedded_runner_sends_a_retry_once_it_is_due(services, auth):
    from avatar.jobs.runners import ThreadRunner
    from tests.conftest import wait_for_jobs

    receiver = Receiver(answers=(500, 200))
    auth.register()
    user_id = _user_id(services, "ada@example.org")
    services.runner = ThreadRunner(services, threads=1, poll_seconds=0.1).start()
    try:
        with services.db.session_scope() as s:
            rules.create_endpoint(s, s.get(User, user_id), receiver.url, ["consent.withdrawn"], "",
                                  by=Actor("web", user_id=user_id), allow_private=True, resolve=delivery_jobs.resolve)
            [delivery] = rules.emit(s, "consent.withdrawn", {"subject_id": user_id, "state": "withdrawn"}, [user_id])
            job_id = delivery.job_id
        wait_for_jobs(services, [job_id], timeout=30)
    finally:
        services.runner.stop()
        services.runner = None
        receiver.close()
    with services.db.session_scope() as s:
        attempts = s.scalar(sa.select(WebhookDelivery)).attempts
    assert [a["status"] for a in attempts] == [500, 200]


@pytest.mark.slow
def test_consent_running_out_is_told_to_the_person_and_their_delegates(services, shared_data, auth, receiver):
    from avatar.domain import delegations
    from avatar.store.models import Consent

    subject = approved_likeness(services, shared_data, scopes=("voice",))
    auth.register("del@example.org", "Del Egate")
    delegate = _user_id(services, "del@example.org")
    with services.db.session_scope() as s:
        for user_id in (subject, delegate):
            rules.create_endpoint(s, s.get(User, user_id), receiver.url, ["consent.expired", "consent.withdrawn"],
                                  str(user_id), by=Actor("web", user_id=user_id), allow_private=True,
                                  resolve=delivery_jobs.resolve)
        delegations.create(s, s.get(User, subject), "del@example.org", ["speech"], ["personal"], 7, utcnow(),
                           by=Actor("web", user_id=subject))
    with services.db.session_scope() as s:
        s.execute(sa.update(Consent).values(expires_at=utcnow() - timedelta(minutes=1)))
    assert execute(services, enqueue(services, "consent.expire")) == "succeeded"
    _deliver_all(services)
    assert sorted((e["type"], e["data"]["state"]) for e in receiver.events()) == [("consent.expired", "expired")] * 2
    assert len({c["headers"]["webhook-id"] for c in receiver.calls}) == 2  # one message per endpoint
