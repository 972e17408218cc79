"""The scale-out runner: Celery workers over the machine's Redis, on PostgreSQL."""
import os
import signal
import subprocess
import sys
import time

import pytest

from avatar.jobs import enqueue
from avatar.jobs.core import RunnerUnavailable
from avatar.store import audit
from avatar.store.models import Job
from tests.conftest import make_app, wait_for_jobs

pytestmark = pytest.mark.services


def test_celery_worker_runs_jobs_from_the_same_api(tmp_path, pg_url, redis_url):
    app = make_app(tmp_path, DATABASE_URL=pg_url, JOB_RUNNER="celery", BROKER_URL=redis_url)
    services = app.extensions["avatar"]
    for i in range(3):
        audit.record(services.db, "test.event", details={"i": i})
    env = {**os.environ, "AVATAR_INSTANCE_PATH": services.config.INSTANCE_PATH, "AVATAR_DATABASE_URL": pg_url,
           "AVATAR_JOB_RUNNER": "celery", "AVATAR_BROKER_URL": redis_url}
    worker = subprocess.Popen([sys.executable, "-m", "avatar.cli", "worker", "--concurrency", "2"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        job_id = enqueue(services, "audit.verify", {})
        row = wait_for_jobs(services, [job_id])[job_id]
        assert row.state == "succeeded", row.error
        assert row.result["ok"] is True and row.result["events"] == 3
        assert row.worker_id and row.worker_id.split(":")[0]
    finally:
        _stop(worker)
        services.close()


def _stop(worker: subprocess.Popen) -> None:
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)


def test_unreachable_broker_is_a_clear_error_not_a_hang(tmp_path):
    app = make_app(tmp_path, JOB_RUNNER="celery", BROKER_URL="redis://127.0.0.1:1/0")
    services = app.extensions["avatar"]
    started = time.time()
    with pytest.raises(RunnerUnavailable, match="unreachable"):
        enqueue(services, "audit.verify", {})
    assert time.time() - started < 15
    with services.db.session_scope() as s:  # the job is kept, to be sent when the broker is back
        assert [j.state for j in s.query(Job)] == ["queued"]


def test_upload_with_the_broker_down_is_a_clear_503_and_keeps_the_job(tmp_path, shared_data):
    import io

    from tests.conftest import STRONG_PASSWORD, csrf_token

    app = make_app(tmp_path, JOB_RUNNER="celery", BROKER_URL="redis://127.0.0.1:1/0")
    client = app.test_client()
    services = app.extensions["avatar"]
    from avatar.domain.accounts import register

    with services.db.session_scope() as s:
        register(s, "ada@example.org", "Ada Lovelace", STRONG_PASSWORD)
    client.post("/auth/login", data={"email": "ada@example.org", "password": STRONG_PASSWORD,
                                     "csrf_token": csrf_token(client)})
    token = csrf_token(client, "/enroll/capture")
    nonce = client.post("/api/enroll/sessions", headers={"X-CSRFToken": token}).get_json()["nonce"]
    resp = client.post(f"/api/enroll/sessions/{nonce}/recording", headers={"X-CSRFToken": token, "Accept": "application/json"},
                       data={"recording": (io.BytesIO((shared_data / "video/d12.mp4").read_bytes()), "c.mp4")},
                       content_type="multipart/form-data")
    assert resp.status_code == 503 and "saved" in resp.get_json()["error"]
    with services.db.session_scope() as s:
        assert [j.name for j in s.query(Job).filter_by(state="queued")] == ["enrollment.verify"]


def test_a_webhook_goes_out_from_a_celery_worker_and_is_retried_there(tmp_path, pg_url, redis_url):
    """The delivery written beside an action reaches the broker when the transaction commits; the
    worker's attempt is answered 500, and the retry (a broker countdown) is answered 200."""
    import sqlalchemy as sa

    from avatar.domain import webhooks
    from avatar.domain.accounts import register
    from avatar.domain.actor import Actor
    from avatar.jobs.webhooks import resolve
    from avatar.store.models import WebhookDelivery
    from tests.support.webhooks import Receiver, verify

    settings = {"DATABASE_URL": pg_url, "JOB_RUNNER": "celery", "BROKER_URL": redis_url,
                "WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_RETRY_SECONDS": "0.5"}
    app = make_app(tmp_path, **settings)
    services = app.extensions["avatar"]
    receiver = Receiver(answers=(500, 200))
    env = {**os.environ, "AVATAR_INSTANCE_PATH": services.config.INSTANCE_PATH,
           **{f"AVATAR_{k}": str(v) for k, v in settings.items()}}
    worker = subprocess.Popen([sys.executable, "-m", "avatar.cli", "worker", "--concurrency", "1"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with services.db.session_scope() as s:
            user = register(s, "ada@example.org", "Ada Lovelace", "Correct-horse-42-battery")
            endpoint = webhooks.create_endpoint(s, user, receiver.url, ["consent.expired"], "", allow_private=True,
                                                by=Actor("cli"), resolve=resolve)
            webhooks.emit(s, "consent.expired", {"subject_id": user.id, "state": "expired"}, [user.id])
            secret = webhooks.secret_for(services.config.webhook_key(), endpoint.id, 1)
        with services.db.session_scope() as s:
            job_id = s.scalar(sa.select(WebhookDelivery.job_id))
        row = wait_for_jobs(services, [job_id], timeout=60)[job_id]
        assert row.state == "succeeded", (row.state, row.error, row.message)
        assert len(receiver.calls) == 2 and all(verify(secret, c["headers"], c["body"]) for c in receiver.calls)
        with services.db.session_scope() as s:
            assert [a["status"] for a in s.scalar(sa.select(WebhookDelivery)).attempts] == [500, 200]
    finally:
        receiver.close()
        _stop(worker)
        services.close()
