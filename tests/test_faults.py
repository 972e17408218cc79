"""Faults: a full disk under the media store, a worker process killed mid-job (embedded runner and
Celery), and a PostgreSQL restart while requests are being served. Each must end in a clear error
or a retry, never in a half-written row or file. (Redis down: tests/test_celery_runner.py.)"""
from __future__ import annotations

import errno
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from avatar.domain import generation
from avatar.domain.actor import Actor
from avatar.jobs import enqueue
from avatar.jobs.core import execute
from avatar.store import audit
from avatar.store.db import utcnow
from avatar.store.models import AuditEvent, Generation, Job, LivenessSession, MediaObject, SubjectKey, User
from tests.conftest import (
    CSRF_FIELD,
    PG_ADMIN_URL,
    STRONG_PASSWORD,
    AuthActions,
    csrf_token,
    make_app,
    row_counts,
    wait_for_jobs,
)
from tests.likeness_factory import approved_likeness
from tests.mounts import tmpfs

ROOT = Path(__file__).resolve().parents[1]


# -- a full disk --------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A real 8 MB filesystem (tmpfs) for the media store, so that writes fail with ENOSPC."""
    with tmpfs(tmp_path / "media", "size=8m,mode=0700") as mnt:
        yield mnt


def _fill(disk: Path) -> Path:
    """Writes a file until the filesystem has no space left; returns it."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(chunk)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    assert shutil.disk_usage(disk).free < 8192
    return filler


def _files(disk: Path) -> list[str]:
    return sorted(str(p.relative_to(disk)) for p in disk.rglob("*") if p.is_file() and p.name != "filler")


def test_full_media_store_refuses_an_upload_with_507_and_keeps_nothing(tmp_path, small_disk, shared_data):
    app = make_app(tmp_path, MEDIA_PATH=str(small_disk))
    services = app.extensions["avatar"]
    client = app.test_client()
    auth = AuthActions(client, services)
    auth.create("ada@example.org")
    auth.login()
    token = csrf_token(client, "/enroll/capture")
    nonce = client.post("/api/enroll/sessions", headers={"X-CSRFToken": token}).get_json()["nonce"]
    recording = (shared_data / "video/d12.mp4").read_bytes()

    def upload():
        return client.post(f"/api/enroll/sessions/{nonce}/recording", headers={"X-CSRFToken": token},
                           data={"recording": (io.BytesIO(recording), "capture.mp4")},
                           content_type="multipart/form-data")

    filler = _fill(small_disk)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["media"] == {"ok": False, "error": "StorageFull"}
    before = row_counts(services, MediaObject, Job, SubjectKey, AuditEvent)
    resp = upload()
    assert resp.status_code == 507, resp.get_data(as_text=True)
    assert "full" in resp.get_json()["error"] and "nothing you sent was saved" in resp.get_json()["error"]
    assert row_counts(services, MediaObject, Job, SubjectKey, AuditEvent) == before
    assert _files(small_disk) == []  # no partial blob, no temporary file
    with services.db.session_scope() as s:
        ls = s.scalar(sa.select(LivenessSession).where(LivenessSession.nonce == nonce))
        assert ls.recording_media_id is None and ls.used_at is None  # the challenge can still be answered

    filler.unlink()  # space comes back: the same challenge is answered and stored
    assert client.get("/readyz").get_json()["checks"]["media"]["ok"] is True  # (model files may be missing here)
    resp = upload()
    assert resp.status_code == 202, resp.get_data(as_text=True)
    assert len(_files(small_disk)) == 1
    with services.db.session_scope() as s:
        media = s.scalars(sa.select(MediaObject)).all()
        assert [m.kind for m in media] == ["evidence"]
        assert services.media.get(s, media[0]) == recording
    services.close()


def test_full_media_store_fails_a_generation_job_cleanly(tmp_path, small_disk, shared_data):
    app = make_app(tmp_path, MEDIA_PATH=str(small_disk))
    services = app.extensions["avatar"]
    subject = approved_likeness(services, shared_data)
    with services.db.session_scope() as s:
        gen = generation.request(s, services.gate, subject, subject, "speech", "personal",
                                 "Hello, this is a short message for my family.", utcnow(), "offline",
                                 by=Actor("web", user_id=subject))
        gen_id = gen.id
    job_id = enqueue(services, "generation.render", {"generation_id": gen_id}, owner_id=subject, max_attempts=1)
    files = _files(small_disk)
    before = row_counts(services, MediaObject)
    _fill(small_disk)
    assert execute(services, job_id) == "failed"
    with services.db.session_scope() as s:
        row = s.get(Job, job_id)
        assert "StorageFull" in row.error and "media store is full" in row.error
        gen = s.get(Generation, gen_id)
        assert gen.output_media_id is None and gen.manifest is None and gen.content_sha256 is None
    assert row_counts(services, MediaObject) == before and _files(small_disk) == files
    services.close()


# -- a worker killed mid-job ---------------------------------------------------------------------
def _start_worker(kind: str, env: dict) -> subprocess.Popen:
    args = ["threads"] if kind == "threads" else ["celery", "--concurrency", "2"]
    return subprocess.Popen([sys.executable, "-m", "tests.fault_jobs", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["threads", pytest.param("celery", marks=pytest.mark.services)])
def test_worker_killed_mid_job_is_retried_or_failed_cleanly(kind, tmp_path, request):
    """kill -9 of the whole worker (threads: the app process on SQLite; Celery: the worker and its
    pool on PostgreSQL/Redis). Another worker started afterwards takes the job over when its lease
    has expired: retried if attempts are left, else failed naming the dead worker. Nothing runs twice."""
    extra = {}
    if kind == "celery":
        extra = {"DATABASE_URL": request.getfixturevalue("pg_url"), "JOB_RUNNER": "celery",
                 "BROKER_URL": request.getfixturevalue("redis_url")}
    app = make_app(tmp_path, JOB_LEASE_SECONDS=3, JOB_POLL_SECONDS=0.5, **extra)
    services = app.extensions["avatar"]
    cfg = services.config
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AVATAR_INSTANCE_PATH": cfg.INSTANCE_PATH,
           "AVATAR_DATABASE_URL": cfg.DATABASE_URL, "AVATAR_JOB_LEASE_SECONDS": "3",
           "AVATAR_JOB_POLL_SECONDS": "0.5", "AVATAR_JOB_RUNNER": kind,
           **({"AVATAR_BROKER_URL": extra["BROKER_URL"]} if extra else {})}
    import tests.fault_jobs  # noqa: F401 - registers the job here too, for enqueue()

    first = _start_worker(kind, env)
    second = None
    try:
        retried = enqueue(services, "test.slow_first_attempt", {"seconds": 120}, max_attempts=2)
        last_try = enqueue(services, "test.slow_first_attempt", {"seconds": 120}, max_attempts=1)
        rows = wait_for_jobs(services, [retried, last_try], lambda r: r.state == "running" and r.progress == 10, 90)
        dead = {i: r.worker_id for i, r in rows.items()}
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        with services.db.session_scope() as s:  # the dead worker's rows are untouched until its lease runs out
            assert {s.get(Job, i).state for i in dead} == {"running"}

        second = _start_worker(kind, env)
        rows = wait_for_jobs(services, [retried, last_try], timeout=90)
        assert rows[retried].state == "succeeded" and rows[retried].attempts == 2
        assert rows[retried].result == {"attempt": 2} and rows[retried].worker_id != dead[retried]
        assert rows[last_try].state == "failed" and rows[last_try].attempts == 1
        assert rows[last_try].error == f"the worker stopped during attempt 1; no attempts left\nworker {dead[last_try]}"
        shown = rows[last_try].public_dict()["error"]  # what the owner sees names no host, pid or thread
        assert shown == "the worker stopped during attempt 1; no attempts left"
        time.sleep(2)  # a late duplicate (e.g. a redelivered Celery message) would start another attempt
        with services.db.session_scope() as s:
            assert s.get(Job, retried).attempts == 2 and s.get(Job, last_try).attempts == 1
    finally:
        _stop(first, signal.SIGKILL)
        if second is not None:
            _stop(second)
        services.close()


# -- a database restart during requests ------------------------------------------------------------
def _restart_postgres() -> str:
    """Restarts the PostgreSQL server on 127.0.0.1:5432 (pg_ctlcluster, as root). Without that tool,
    every connection to the server is terminated instead, which clients see the same way."""
    listing = shutil.which("pg_lsclusters") and subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True)
    cluster = next((line.split()[:2] for line in (listing.stdout.splitlines() if listing else [])
                    if line.split()[2:3] == ["5432"]), None)
    if cluster and os.geteuid() == 0:
        subprocess.run(["pg_ctlcluster", *cluster, "restart", "-m", "fast"], check=True, timeout=60)
        return "restarted"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"))
    admin.dispose()
    return "connections terminated"


@pytest.mark.services
@pytest.mark.restarts_postgres
def test_postgres_restart_during_requests_gives_503s_then_recovers_without_torn_rows(tmp_path, pg_url):
    """Four clients register accounts in a loop while the server restarts. Every response is a
    success or a 503 saying nothing was saved; each saved account has its audit event (they are
    committed together); the audit chain holds; and service resumes on its own."""
    app = make_app(tmp_path, DATABASE_URL=pg_url)
    services = app.extensions["avatar"]
    results: list[tuple[str, int, float]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def client_loop(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            email = f"user{n}-{i}@example.org"
            client = app.test_client()
            try:
                page = client.get("/auth/register")
                m = CSRF_FIELD.search(page.get_data(as_text=True))  # (no assert: the page may be a 503)
                status = page.status_code
                if m:
                    status = client.post("/auth/register", data={
                        "email": email, "full_name": f"User {n} {i}", "password": STRONG_PASSWORD,
                        "confirm": STRONG_PASSWORD, "csrf_token": m.group(1)}).status_code
            except Exception as exc:  # noqa: BLE001 - an exception escaping the app is a failure
                status = f"raised {type(exc).__name__}: {exc}"
            with lock:
                results.append((email, status, time.time()))

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        how = _restart_postgres()
        restarted_at = time.time()
        time.sleep(3)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    statuses = {s for _, s, _ in results}
    assert statuses <= {200, 302, 503}, statuses
    assert 503 in statuses, f"no request saw the database go away ({how})"
    after = [s for _, s, at in results if at > restarted_at + 1.5]
    assert after and after[-5:] == [302] * len(after[-5:]), after  # served again without a restart of the app

    saved = {e for e, s, _ in results if s == 302}
    with services.db.session_scope() as s:
        users = {u.email: u.id for u in s.scalars(sa.select(User))}
        registered = {ev.target_id for ev in s.scalars(sa.select(AuditEvent).where(AuditEvent.action == "account.registered"))}
    assert saved <= set(users)  # every account the client was told about exists
    assert set(users.values()) == registered  # and no account exists without its audit event (nor the reverse)
    report = audit.verify_chain(services.db)
    assert report.ok, report
    services.close()
