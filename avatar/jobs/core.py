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


class RetryLater(Exception):
    """Raised by a job that wants another attempt after `seconds` (a retry with backoff): it goes
    back to the queue with run_after set, whatever max_attempts says (the job counts its own)."""

    def __init__(self, seconds: float, message: str):
        super().__init__(message)
        self.seconds = max(0.0, float(seconds))


FAILURE_HOOKS: dict[str, Callable[[Any, Job], None]] = {}


def job(name: str, on_failed: Callable[[Any, Job], None] | None = None):
    """Registers a job function under name: `@job("audit.verify") def f(ctx): ...`. on_failed(session,
    job_row) runs in the transaction that marks the job failed for good (its last attempt, a
    permanent error, or its worker dead with no attempts left)."""

    def deco(fn):
        if name in REGISTRY and REGISTRY[name] is not fn:
            raise ValueError(f"job {name!r} registered twice")
        REGISTRY[name] = fn
        if on_failed is not None:
            FAILURE_HOOKS[name] = on_failed
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


SUBMIT_ON_COMMIT: set[str] = set()  # jobs the domain layer adds (it cannot reach the runner)


def submit_on_commit(services) -> None:
    """Hands the runner every queued job named in SUBMIT_ON_COMMIT that a transaction of this
    database added, once that transaction commits (nothing if it rolls back). The domain layer
    writes such jobs beside the action that caused them (an outbox) and never calls the runner."""
    factory = services.db.factory
    if factory.__dict__.get("_avatar_submit_on_commit"):
        return
    factory._avatar_submit_on_commit = True

    def collect(session, _flush_context):
        new = [o for o in session.new if isinstance(o, Job) and o.name in SUBMIT_ON_COMMIT]
        if new:
            session.info.setdefault("avatar_jobs_to_submit", set()).update(o.id for o in new)

    def send(session):
        for job_id in sorted(session.info.pop("avatar_jobs_to_submit", ())):
            try:
                submit(services, job_id)
            except Exception:  # noqa: BLE001 - the row is committed and queued: the pollers send it
                log.warning("job %s committed but not handed to the runner", job_id, exc_info=True)

    def forget(session):
        session.info.pop("avatar_jobs_to_submit", None)

    sa.event.listen(factory, "after_flush", collect)
    sa.event.listen(factory, "after_commit", send)
    sa.event.listen(factory, "after_rollback", forget)


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


def due(now):
    """The condition a queued job meets when it may run now (not waiting for a retry)."""
    return sa.or_(Job.run_after.is_(None), Job.run_after <= now)


def _claim(services, job_id: int, worker_id: str) -> Job | None:
    now = utcnow()
    lease = now + timedelta(seconds=services.config.JOB_LEASE_SECONDS)
    with services.db.session_scope() as s:
        res = s.execute(sa.update(Job).where(Job.id == job_id, Job.state == JobState.QUEUED.value, due(now)).values(
            state=JobState.RUNNING.value, attempts=Job.attempts + 1, worker_id=worker_id,
            lease_until=lease, started_at=utcnow(), message="started"))
        if not res.rowcount:
            return None
        return s.get(Job, job_id)


def _finish(services, job_id: int, state: JobState, **values) -> None:
    with services.db.session_scope() as s:
        done = s.execute(sa.update(Job).where(Job.id == job_id, Job.state == JobState.RUNNING.value).values(
            state=state.value, finished_at=utcnow(), lease_until=None, **values)).rowcount
        if done and state == JobState.FAILED:
            failed(s, s.get(Job, job_id))


def _requeue(services, job_id: int, message: str, run_after=None) -> None:
    """A running job back in the queue for another attempt (not before run_after, when given)."""
    with services.db.session_scope() as s:
        s.execute(sa.update(Job).where(Job.id == job_id, Job.state == JobState.RUNNING.value).values(
            state=JobState.QUEUED.value, lease_until=None, worker_id=None, message=message, run_after=run_after))


def failed(session, row: Job) -> None:
    """Runs the job's on_failed hook (if it has one) in the transaction that fails it."""
    hook = FAILURE_HOOKS.get(row.name)
    if hook is not None:
        hook(session, row)


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
    except RetryLater as exc:
        _requeue(services, job_id, str(exc)[:200], run_after=utcnow() + timedelta(seconds=exc.seconds))
        if services.runner is not None:
            try:  # on time; should this fail, the runners' pollers send it once it is due
                services.runner.submit_later(job_id, exc.seconds)
            except Exception:  # noqa: BLE001 - the row is queued: nothing is lost
                log.warning("could not schedule job %s again", job_id, exc_info=True)
        return JobState.QUEUED.value
    except Exception as exc:  # noqa: BLE001 - a job's failure must not kill the worker
        log.exception("job %s (%s) failed on attempt %s", job_id, row.name, row.attempts)
        if row.attempts < row.max_attempts:
            _requeue(services, job_id, f"retrying after error (attempt {row.attempts} of {row.max_attempts})")
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


def _fresh_after_fork() -> None:
    """A forked process (a Celery pool process) is a worker of its own (its pid in the jobs it runs),
    runs none of its parent's jobs, and must not inherit a lock a parent thread held at the fork."""
    global _LIVE_LOCK, WORKER_ID
    WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
    _LIVE_LOCK = threading.Lock()
    _LIVE_HERE.clear()


os.register_at_fork(after_in_child=_fresh_after_fork)


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
                failed(s, row)
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
