"""Periodic jobs in real processes (issue 20): an expired consent is revoked, expired media purged and
orphan blobs swept by whatever runs the jobs (Celery workers on PostgreSQL + Redis, or the embedded job
threads), each once per period however many workers and servers run, and `avatar jobs status` shows
when each last succeeded."""
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from avatar.domain import review
from avatar.domain.accounts import register
from avatar.domain.actor import Actor
from avatar.jobs.periodic import PERIODIC
from avatar.store.db import utcnow
from avatar.store.models import AuditEvent, Consent, Enrollment, Job, MediaObject, Role, SubjectKey, User
from tests.conftest import STRONG_PASSWORD, make_app
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[1]


def _due_work(services) -> dict:
    """An approved likeness whose consent ran out a minute ago (with its face on file), a generated
    output past its expiry, and a two-hour-old blob that no media row names."""
    with services.db.session_scope() as s:
        subject = register(s, "subject@example.org", "Sub Ject", STRONG_PASSWORD)
        rev = register(s, "rev@example.org", "Re Viewer", STRONG_PASSWORD, role=Role.REVIEWER)
        enr = Enrollment(user_id=subject.id, state="submitted")
        s.add(enr)
        s.flush()
        review.decide(s, s.get(User, rev.id), enr.id, "approve", "clear capture and consent", by=Actor("web", user_id=rev.id))
        s.add(Consent(enrollment_id=enr.id, user_id=subject.id, scopes=["face"], purposes=["personal"],
                      text_version="v", text_sha256="0" * 64, text="t", expires_at=utcnow() - timedelta(minutes=1)))
        services.media.put(s, subject.id, "face_ref", b"face", "image/png")
        out = services.media.put(s, rev.id, "generated", b"old output", "video/mp4",
                                 expires_at=utcnow() - timedelta(minutes=1))
        ids = {"subject": subject.id, "enrollment": enr.id, "output": out.id}
    services.media.blobs.write("orphans/left-behind", b"x")
    old = time.time() - 7200
    os.utime(Path(services.media.blobs.root) / "orphans/left-behind", (old, old))
    return ids


def _assert_done(services, ids: dict) -> None:
    """Each periodic job ran exactly once and did its work."""
    with services.db.session_scope() as s:
        jobs = s.scalars(sa.select(Job).where(Job.name.in_(PERIODIC))).all()
        assert sorted(j.name for j in jobs) == sorted(PERIODIC), [(j.name, j.worker_id) for j in jobs]
        assert all(j.state == "succeeded" for j in jobs), [(j.name, j.state, j.error) for j in jobs]
        result = {j.name: j.result for j in jobs}
        assert result["consent.expire"] == {"expired": [ids["subject"]]}
        assert result["media.purge_expired"] == {"purged": 1, "idempotency_keys_expired": 0, "webhook_deliveries_expired": 0}
        assert result["media.sweep_orphans"]["deleted"] == 1
        assert s.get(Enrollment, ids["enrollment"]).state == "expired"
        assert s.scalar(sa.select(SubjectKey.wrapped_key).where(SubjectKey.subject_id == ids["subject"])) is None
        assert s.get(MediaObject, ids["output"]).deleted_at is not None
        events = s.scalars(sa.select(AuditEvent.action)).all()
        assert "enrollment.expired" in events and "media.purged" in events and "media.orphans_swept" in events
    assert not (Path(services.media.blobs.root) / "orphans/left-behind").exists()


def _wait_until_each_ran(services, timeout: float = 120, logs: Path | None = None) -> None:
    """Until every periodic job succeeded; else fails with the jobs' states and the tail of each
    process's log in the folder logs (what the workers and the server said)."""
    end = time.time() + timeout
    while time.time() < end:
        with services.db.session_scope() as s:
            done = s.scalars(sa.select(Job.name).where(Job.name.in_(PERIODIC), Job.state == "succeeded")).all()
        if set(done) == set(PERIODIC):
            return
        time.sleep(0.5)
    said = {f.name: f.read_text(errors="replace")[-3000:] for f in sorted(logs.glob("*.log"))} if logs else {}
    with services.db.session_scope() as s:
        raise AssertionError([(j.name, j.state, j.error) for j in s.scalars(sa.select(Job))], said)


def _jobs_status(env: dict) -> tuple[int, dict]:
    out = subprocess.run([sys.executable, "-m", "avatar.cli", "jobs", "status", "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    return out.returncode, json.loads(out.stdout)


def _stop(procs) -> None:
    for p in procs:
        os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


@pytest.mark.services
@pytest.mark.slow
def test_two_celery_workers_and_a_server_run_each_periodic_job_once(tmp_path, pg_url, redis_url):
    app = make_app(tmp_path, DATABASE_URL=pg_url, JOB_RUNNER="celery", BROKER_URL=redis_url)
    services = app.extensions["avatar"]
    ids = _due_work(services)
    env = {**os.environ, "AVATAR_INSTANCE_PATH": services.config.INSTANCE_PATH, "AVATAR_DATABASE_URL": pg_url,
           "AVATAR_JOB_RUNNER": "celery", "AVATAR_BROKER_URL": redis_url, "AVATAR_JOB_POLL_SECONDS": "0.2",
           "AVATAR_SECURE_COOKIES": "false"}
    code, before = _jobs_status(env)
    assert code == 1 and sorted(before["late"]) == sorted(PERIODIC)  # never run yet
    procs = []
    for k, args in enumerate((["worker", "--concurrency", "2"], ["worker", "--concurrency", "2"],
                              ["serve", "--port", str(free_port())])):
        with open(tmp_path / f"{k}-{args[0]}.log", "wb") as log:  # the child keeps its own copy
            procs.append(subprocess.Popen([sys.executable, "-m", "avatar.cli", *args], cwd=ROOT, env=env,
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    try:
        _wait_until_each_ran(services, logs=tmp_path)
        time.sleep(5)  # each worker's loop passes about once a second: several more passes, no second run
        _assert_done(services, ids)
    finally:
        _stop(procs)
        services.close()
    code, after = _jobs_status(env)
    assert code == 0 and after["late"] == []
    assert all(p["last_succeeded_at"] and p["next_due_at"] > p["last_succeeded_at"] for p in after["periodic"])


@pytest.mark.slow
@pytest.mark.parametrize("servers,database", [(1, "sqlite"), pytest.param(2, "postgresql", marks=pytest.mark.services)])
def test_the_job_threads_of_servers_run_each_periodic_job_once(tmp_path, request, servers, database):
    """The embedded mode (one server's job threads on SQLite), and two servers with job threads on
    one PostgreSQL database."""
    db = {"DATABASE_URL": request.getfixturevalue("pg_url")} if database == "postgresql" else {}
    setup = make_app(tmp_path, **db)  # no runner yet: the work is due before any poller passes
    ids = _due_work(setup.extensions["avatar"])
    setup.extensions["avatar"].close()
    apps = [make_app(tmp_path, JOB_RUNNER="threads", **db) for _ in range(servers)]
    services = apps[0].extensions["avatar"]
    try:
        _wait_until_each_ran(services)
        time.sleep(2)  # ten more passes of each poller
        _assert_done(services, ids)
    finally:
        for app in apps:
            app.extensions["avatar"].close()
    env = {**os.environ, "AVATAR_INSTANCE_PATH": services.config.INSTANCE_PATH,
           "AVATAR_DATABASE_URL": services.config.DATABASE_URL}
    code, status = _jobs_status(env)
    assert code == 0 and status["late"] == [] and all(p["last_failed_at"] is None for p in status["periodic"])


def test_jobs_status_on_a_database_without_the_schedule_is_a_clear_error(tmp_path):
    env = {**os.environ, "AVATAR_INSTANCE_PATH": str(tmp_path / "inst")}  # a fresh instance, never upgraded
    out = subprocess.run([sys.executable, "-m", "avatar.cli", "jobs", "status"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "avatar db upgrade" in out.stderr and "Traceback" not in out.stderr, out.stderr
