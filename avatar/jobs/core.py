"""Job registry, execution and progress reporting, independent of the runner.

A job is a row in `jobs` and a function registered under its name. Runners (worker threads in
the app process, or Celery workers) only call execute(job_id); execute() claims the row
atomically, so a job runs once even if two runners are told about it.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from datetime import timedelta
from typing import Any, Callable

import sqlalchemy as sa

from avatar.domain.actor import Actor, audit
from avatar.store.db import utcnow
from avatar.store.models import Job, JobState

log = logging.getLogger(__name__)

REGISTRY: dict[str, Callable[["JobContext"], Any]] = {}
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


class RunnerUnavailable(RuntimeError):
    """The job queue cannot be reached; the job stays queued in the database."""


class JobCancelled(Exception):
    """Raised inside a job when cancellation was requested; the job ends as cancelled."""


class PermanentJobError(Exception):
    """A failure retrying cannot fix (bad input); the job fails at once with this message."""


def job(name: str):
    """Registers a job function under name: `@job("audit.verify") def f(ctx): ...`."""

    def deco(fn):
        if name in REGISTRY and REGISTRY[name] is not fn:
            raise ValueError(f"job {name!r} registered twice")
        REGISTRY[name] = fn
        return fn

    return deco


class JobContext:
    """What a job function sees: its payload, the services, and progress/cancel calls."""

    def __init__(self, services, job_row: Job):
        self.services = services
        self.job_id = job_row.id
        self.payload = dict(job_row.payload or {})
        self.owner_id = job_row.owner_id
        self.subject_id = job_row.subject_id
        self.attempt = job_row.attempts

    def progress(self, percent: int, message: str = "") -> None:
        """Stores progress (0–100), renews the lease, and raises JobCancelled if asked to stop."""
        percent = max(0, min(100, int(percent)))
        db = self.services.db
        lease = utcnow() + timedelta(seconds=self.services.config.JOB_LEASE_SECONDS)
        with db.session_scope() as s:
            s.execute(sa.update(Job).where(Job.id == self.job_id).values(
                progress=percent, message=message[:200], lease_until=lease))
            cancel = s.scalar(sa.select(Job.cancel_requested).where(Job.id == self.job_id))
        if cancel:
            raise JobCancelled(message or "cancelled")


def add_job(session, name: str, payload: dict | None = None, *, owner_id: int | None = None,
            subject_id: int | None = None, max_attempts: int = 3) -> Job:
    """A queued job in the caller's transaction (flushed, so it has an id): it is saved together
    with whatever the caller saves, or not at all. After the commit, hand it to the runner with
    submit(); until then no worker hears of it (the runners also pick up queued rows on their own)."""
    if name not in REGISTRY:
        raise KeyError(f"unknown job {name!r}")
    row = Job(name=name, payload=payload or {}, owner_id=owner_id, subject_id=subject_id,
              max_attempts=max_attempts, message="queued")
    session.add(row)
    session.flush()
    return row


def submit(services, job_id: int) -> None:
    """Tells the runner about a committed job (RunnerUnavailable if its broker is down: the job
    stays queued in the database and is sent again when the broker is back)."""
    if services.runner is not None:
        services.runner.submit(job_id)


def enqueue(services, name: str, payload: dict | None = None, *, owner_id: int | None = None,
            subject_id: int | None = None, max_attempts: int = 3) -> int:
    """Creates a queued job in its own transaction (committed) and tells the runner. Returns the id."""
    with services.db.session_scope() as s:
        job_id = add_job(s, name, payload, owner_id=owner_id, subject_id=subject_id, max_attempts=max_attempts).id
    submit(services, job_id)
    return job_id


def request_cancel(services, job_id: int, *, by: Actor) -> bool:
    """Asks a job to stop, audited in the same transaction. A queued job is cancelled at once; a
    running one at its next progress call."""
    with services.db.session_scope() as s:
        done = s.execute(sa.update(Job).where(Job.id == job_id, Job.state == JobState.QUEUED.value).values(
            state=JobState.CANCELLED.value, cancel_requested=True, finished_at=utcnow(), message="cancelled"))
        accepted = bool(done.rowcount) or bool(s.execute(sa.update(Job).where(
            Job.id == job_id, Job.state == JobState.RUNNING.value).values(cancel_requested=True)).rowcount)
        audit(s, by, "job.cancel_requested", target_type="job", target_id=job_id, details={"accepted": accepted})
        return accepted


def _claim(services, job_id: int, worker_id: str) -> Job | None:
    lease = utcnow() + timedelta(seconds=services.config.JOB_LEASE_SECONDS)
    with services.db.session_scope() as s:
        res = s.execute(sa.update(Job).where(Job.id == job_id, Job.state == JobState.QUEUED.value).values(
            state=JobState.RUNNING.value, attempts=Job.attempts + 1, worker_id=worker_id,
            lease_until=lease, started_at=utcnow(), message="started"))
        if not res.rowcount:
            return None
        return s.get(Job, job_id)


def _finish(services, job_id: int, state: JobState, **values) -> None:
    with services.db.session_scope() as s:
        s.execute(sa.update(Job).where(Job.id == job_id, Job.state == JobState.RUNNING.value).values(
            state=state.value, finished_at=utcnow(), lease_until=None, **values))


def execute(services, job_id: int, worker_id: str | None = None) -> str | None:
    """Runs one job if it is still queued. Returns its final state, or None if not claimed."""
    worker_id = worker_id or f"{WORKER_ID}:{threading.get_ident()}"
    row = _claim(services, job_id, worker_id)
    if row is None:
        return None
    fn = REGISTRY.get(row.name)
    if fn is None:
        _finish(services, job_id, JobState.FAILED, error=f"no job function named {row.name!r} in this worker")
        return JobState.FAILED.value
    ctx = JobContext(services, row)
    heartbeat = _Heartbeat(services, job_id)
    try:
        with heartbeat:
            result = fn(ctx)
    except JobCancelled:
        _finish(services, job_id, JobState.CANCELLED, message="cancelled")
        return JobState.CANCELLED.value
    except PermanentJobError as exc:
        _finish(services, job_id, JobState.FAILED, error=str(exc), message="failed")
        return JobState.FAILED.value
    except Exception as exc:  # noqa: BLE001 - a job's failure must not kill the worker
        log.exception("job %s (%s) failed on attempt %s", job_id, row.name, row.attempts)
        if row.attempts < row.max_attempts:
            with services.db.session_scope() as s:
                s.execute(sa.update(Job).where(Job.id == job_id, Job.state == JobState.RUNNING.value).values(
                    state=JobState.QUEUED.value, lease_until=None, worker_id=None,
                    message=f"retrying after error (attempt {row.attempts} of {row.max_attempts})"))
            if services.runner is not None:
                services.runner.submit(job_id)
            return JobState.QUEUED.value
        _finish(services, job_id, JobState.FAILED, message="failed",
                error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"[:4000])
        return JobState.FAILED.value
    _finish(services, job_id, JobState.SUCCEEDED, progress=100, message="done",
            result=result if isinstance(result, dict) else {"value": result})
    return JobState.SUCCEEDED.value


_LIVE_HERE: set[int] = set()  # jobs this process is running now: alive even if a beat was missed
_LIVE_LOCK = threading.Lock()


class _Heartbeat:
    """Renews the job's lease while its function runs, so only a dead worker's lease expires."""

    def __init__(self, services, job_id: int):
        self.services, self.job_id = services, job_id
        self.interval = max(0.2, services.config.JOB_LEASE_SECONDS / 3)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"job-{job_id}-heartbeat", daemon=True)

    def __enter__(self):
        with _LIVE_LOCK:
            _LIVE_HERE.add(self.job_id)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        with _LIVE_LOCK:
            _LIVE_HERE.discard(self.job_id)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            lease = utcnow() + timedelta(seconds=self.services.config.JOB_LEASE_SECONDS)
            try:
                with self.services.db.session_scope() as s:
                    s.execute(sa.update(Job).where(Job.id == self.job_id, Job.state == JobState.RUNNING.value)
                              .values(lease_until=lease))
            except Exception:  # noqa: BLE001 - a missed beat only shortens the lease
                log.warning("could not renew lease of job %s", self.job_id, exc_info=True)


def recover_stale(services) -> list[int]:
    """Jobs whose worker died (running, lease expired): requeued, or failed after max attempts.

    Returns the ids that were requeued, for the runner to pick up.
    """
    now = utcnow()
    with services.db.session_scope() as s:
        stale = s.scalars(sa.select(Job).where(Job.state == JobState.RUNNING.value, Job.lease_until < now)).all()
        requeued = []
        with _LIVE_LOCK:
            live_here = set(_LIVE_HERE)
        for row in stale:
            if row.id in live_here and (row.worker_id or "").startswith(f"{WORKER_ID}:"):
                # a busy machine (or a locked database) delayed this process's heartbeat; the job is alive
                row.lease_until = now + timedelta(seconds=services.config.JOB_LEASE_SECONDS)
                continue
            # what the job's owner sees names no host, process or thread; operators find the
            # worker on the error's second line (never shown by public_dict) and in the log
            log.warning("job %s: worker %s stopped during attempt %s", row.id, row.worker_id, row.attempts)
            if row.attempts >= row.max_attempts:
                row.state = JobState.FAILED.value
                row.finished_at = now
                row.error = (f"the worker stopped during attempt {row.attempts}; no attempts left\n"
                             f"worker {row.worker_id}")
                row.message = "failed"
            elif row.cancel_requested:
                row.state = JobState.CANCELLED.value
                row.finished_at = now
                row.message = "cancelled"
            else:
                row.state = JobState.QUEUED.value
                row.message = "requeued: the worker stopped"
                requeued.append(row.id)
            row.lease_until = None
            row.worker_id = None
    return requeued
