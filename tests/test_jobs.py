"""The job API and the in-process thread runner: progress, retries, cancel, crash recovery."""
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from avatar.domain.actor import Actor
from avatar.jobs import JobContext, enqueue, job, request_cancel
from avatar.jobs.core import PermanentJobError, execute, recover_stale
from avatar.jobs.runners import ThreadRunner
from avatar.store.db import utcnow
from avatar.store.models import Job

# a short lease, so that expiry and renewal show within a test
pytestmark = pytest.mark.app_config(JOB_LEASE_SECONDS=3)

CALLS: dict[str, int] = {}
GATE = threading.Event()


@job("test.steps")
def steps_job(ctx: JobContext):
    for i in range(1, 5):
        ctx.progress(i * 25, f"step {i}")
    return {"sum": sum(ctx.payload["values"])}


@job("test.flaky")
def flaky_job(ctx: JobContext):
    CALLS["flaky"] = CALLS.get("flaky", 0) + 1
    if ctx.attempt < 2:
        raise RuntimeError("transient")
    return {"attempt": ctx.attempt}


@job("test.bad_input")
def bad_input_job(ctx: JobContext):
    raise PermanentJobError("the upload has no audio track")


@job("test.wait_for_gate")
def gated_job(ctx: JobContext):
    while not GATE.wait(0.05):
        ctx.progress(10, "waiting")
    return {}


@job("test.silent_wait")
def silent_job(ctx: JobContext):
    """Reports no progress while it waits: only the heartbeat keeps its lease."""
    GATE.wait(30)
    return {}


def _wait(services, job_id, states=("succeeded", "failed", "cancelled"), timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        with services.db.session_scope() as s:
            row = s.get(Job, job_id)
            if row.state in states:
                return row
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} stuck in {row.state}")


@pytest.fixture
def threaded(services):
    services.runner = ThreadRunner(services, threads=2, poll_seconds=0.2).start()
    yield services
    GATE.set()
    services.runner.stop()
    services.runner = None
    GATE.clear()


def test_job_runs_with_progress_and_result(threaded):
    job_id = enqueue(threaded, "test.steps", {"values": [1, 2, 3]}, owner_id=None)
    row = _wait(threaded, job_id)
    assert row.state == "succeeded" and row.progress == 100 and row.result == {"sum": 6}


def test_transient_failure_is_retried(threaded):
    row = _wait(threaded, enqueue(threaded, "test.flaky", {}))
    assert row.state == "succeeded" and row.attempts == 2


def test_permanent_failure_fails_at_once_with_message(threaded):
    row = _wait(threaded, enqueue(threaded, "test.bad_input", {}))
    assert row.state == "failed" and row.attempts == 1 and "no audio track" in row.error


def test_cancel_running_and_queued(services):
    services.runner = None
    queued = enqueue(services, "test.steps", {"values": []})
    assert request_cancel(services, queued, by=Actor("web"))
    with services.db.session_scope() as s:
        assert s.get(Job, queued).state == "cancelled"
    assert execute(services, queued) is None  # a cancelled job is never claimed

    services.runner = ThreadRunner(services, threads=1, poll_seconds=0.2).start()
    try:
        running = enqueue(services, "test.wait_for_gate", {})
        _wait(services, running, states=("running",))
        assert request_cancel(services, running, by=Actor("web"))
        assert _wait(services, running).state == "cancelled"
    finally:
        services.runner.stop()
        services.runner = None


def test_job_of_a_dead_worker_is_requeued_then_run(threaded):
    """A job left 'running' by a process that died (lease expired) runs again after a restart."""
    with threaded.db.session_scope() as s:
        row = Job(name="test.steps", payload={"values": [5]}, state="running", attempts=1,
                  worker_id="dead-host:1", lease_until=utcnow() - timedelta(seconds=1))
        s.add(row)
        s.flush()
        job_id = row.id
    done = _wait(threaded, job_id)
    assert done.state == "succeeded" and done.attempts == 2 and done.result == {"sum": 5}


def test_dead_worker_on_last_attempt_fails_cleanly(services):
    with services.db.session_scope() as s:
        row = Job(name="test.steps", payload={"values": []}, state="running", attempts=3, max_attempts=3,
                  worker_id="dead-host:1", lease_until=utcnow() - timedelta(seconds=1))
        s.add(row)
        s.flush()
        job_id = row.id
    assert recover_stale(services) == []
    with services.db.session_scope() as s:
        row = s.get(Job, job_id)
        assert row.state == "failed" and "dead-host:1" in row.error  # for operators
        assert "dead-host" not in str(row.public_dict())  # not for the job's owner


@pytest.mark.app_config(JOB_LEASE_SECONDS=6)  # beats every 2 s: a missed one on a busy machine does not requeue it
def test_running_job_keeps_its_lease(threaded):
    """The heartbeat renews the lease, so a slow but live job is not taken for dead by another
    process (here: this one, made to forget that it runs the job)."""
    from avatar.jobs import core

    job_id = enqueue(threaded, "test.silent_wait", {})
    _wait(threaded, job_id, states=("running",))
    with core._LIVE_LOCK:
        core._LIVE_HERE.discard(job_id)
    time.sleep(threaded.config.JOB_LEASE_SECONDS + 1)
    with threaded.db.session_scope() as s:
        assert s.get(Job, job_id).lease_until > utcnow()
    assert recover_stale(threaded) == []
    GATE.set()
    done = _wait(threaded, job_id)
    assert done.state == "succeeded" and done.attempts == 1


def test_live_job_of_this_process_is_not_taken_for_dead(threaded):
    """A missed beat (a busy machine, a locked database) must not requeue a job this process runs."""
    job_id = enqueue(threaded, "test.silent_wait", {})
    _wait(threaded, job_id, states=("running",))
    with threaded.db.session_scope() as s:
        s.execute(sa.update(Job).where(Job.id == job_id).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert recover_stale(threaded) == []
    with threaded.db.session_scope() as s:
        row = s.get(Job, job_id)
        assert row.state == "running" and row.lease_until > utcnow()
    GATE.set()
    done = _wait(threaded, job_id)
    assert done.state == "succeeded" and done.attempts == 1


def test_unknown_job_name_is_refused(services):
    with pytest.raises(KeyError):
        enqueue(services, "no.such.job", {})
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(sa.func.count(Job.id))) == 0


def test_periodic_jobs_are_enqueued_by_a_process_that_never_imported_them(tmp_path):
    """`avatar worker`'s requeue loop runs in a process that never imported the job definitions
    (issue 20): the periodic jobs must be enqueued there all the same."""
    import subprocess
    import sys
    from pathlib import Path

    from avatar.store.migrate import upgrade

    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    upgrade(db)
    code = ("import sys\nfrom avatar.config import Config\nfrom avatar.services import Services\n"
            "from avatar.jobs.core import REGISTRY\nfrom avatar.jobs.periodic import enqueue_periodic\n"
            "assert 'consent.expire' not in REGISTRY\n"
            f"svc = Services(Config.from_env({{}}, {{'INSTANCE_PATH': {str(tmp_path / 'inst')!r}, "
            f"'DATABASE_URL': {db!r}, 'JOB_RUNNER': 'none'}}))\n"
            "print(len(enqueue_periodic(svc)))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "3", out.stderr[-2000:]


def test_a_periodic_job_that_fails_to_enqueue_is_retried_and_does_not_stop_the_others(services, monkeypatch):
    from datetime import datetime

    from avatar.jobs import periodic
    from avatar.store.models import PeriodicSchedule

    real = periodic.add_job

    def broken(session, name, *a, **k):
        if name == "consent.expire":
            raise RuntimeError("database refused the row")
        return real(session, name, *a, **k)

    monkeypatch.setattr(periodic, "add_job", broken)
    t0 = datetime(2030, 1, 1)
    assert len(periodic.enqueue_periodic(services, now=t0)) == 2
    with services.db.session_scope() as s:  # not recorded as enqueued: still due
        assert s.get(PeriodicSchedule, "consent.expire").next_due_at == t0
        assert s.get(PeriodicSchedule, "media.purge_expired").last_job_id is not None
    monkeypatch.setattr(periodic, "add_job", real)
    ids = periodic.enqueue_periodic(services, now=t0.replace(second=1))  # the next pass tries it again
    with services.db.session_scope() as s:
        assert [s.get(Job, i).name for i in ids] == ["consent.expire"]
    status = {p["name"]: p for p in periodic.periodic_status(services, now=t0)}
    assert status["consent.expire"]["last_succeeded_at"] is None and status["consent.expire"]["late"]
    assert status["consent.expire"]["last_enqueued_at"] == "2030-01-01T00:00:01Z"


def test_each_period_is_enqueued_once_however_many_processes_pass(services):
    """Eight threads passing at the same moment (as servers and workers do): one job per name;
    a run still queued from the last period is not doubled; a finished one is run again when due."""
    import threading
    from datetime import datetime, timedelta

    from avatar.jobs import periodic

    t0 = datetime(2030, 1, 1)
    ids: list[int] = []
    barrier = threading.Barrier(8)

    def passing(now):
        barrier.wait()
        ids.extend(periodic.enqueue_periodic(services, now=now))

    threads = [threading.Thread(target=passing, args=(t0,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with services.db.session_scope() as s:
        assert sorted(s.get(Job, i).name for i in ids) == sorted(periodic.PERIODIC)
        s.execute(sa.update(Job).where(Job.name == "consent.expire").values(state="succeeded", finished_at=t0))
    assert periodic.enqueue_periodic(services, now=t0 + timedelta(minutes=59)) == []
    again = periodic.enqueue_periodic(services, now=t0 + timedelta(minutes=61))
    with services.db.session_scope() as s:  # media.purge_expired's earlier run is still queued
        assert [s.get(Job, i).name for i in again] == ["consent.expire"]
    status = {p["name"]: p for p in periodic.periodic_status(services, now=t0 + timedelta(minutes=61))}
    assert status["consent.expire"]["last_succeeded_at"] == "2030-01-01T00:00:00Z"
    assert not status["consent.expire"]["late"] and status["media.purge_expired"]["late"]
