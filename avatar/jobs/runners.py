"""Runners: who executes queued jobs. Threads inside the app (default) or Celery workers."""
from __future__ import annotations

import logging
import queue
import threading

import sqlalchemy as sa

from avatar.jobs.core import WORKER_ID, execute, recover_stale
from avatar.jobs.periodic import enqueue_periodic
from avatar.store.models import Job, JobState

log = logging.getLogger(__name__)


class RunnerUnavailable(RuntimeError):
    """The job queue cannot be reached; the job stays queued in the database."""


class ThreadRunner:
    """Worker threads in this process. Polls the database too, so jobs queued before a
    restart, or requeued after a worker died, are picked up without anyone submitting them."""

    def __init__(self, services, threads: int = 2, poll_seconds: float = 2.0):
        self.services = services
        self.threads = threads
        self.poll_seconds = poll_seconds
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._inflight: set[int] = set()
        self._lock = threading.Lock()

    def start(self) -> "ThreadRunner":
        for i in range(self.threads):
            t = threading.Thread(target=self._work, name=f"avatar-job-{i}", daemon=True)
            t.start()
            self._workers.append(t)
        poller = threading.Thread(target=self._poll, name="avatar-job-poller", daemon=True)
        poller.start()
        self._workers.append(poller)
        return self

    def submit(self, job_id: int) -> None:
        with self._lock:
            if job_id in self._inflight:
                return
            self._inflight.add(job_id)
        self._queue.put(job_id)

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        for _ in range(self.threads):
            self._queue.put(None)
        for t in self._workers:
            t.join(timeout=timeout)

    def _work(self) -> None:
        while not self._stop.is_set():
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                execute(self.services, job_id, f"{WORKER_ID}:{threading.current_thread().name}")
            except Exception:  # noqa: BLE001 - keep the worker alive (e.g. database restarting)
                log.exception("runner could not execute job %s", job_id)
            finally:
                with self._lock:
                    self._inflight.discard(job_id)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                recover_stale(self.services)
            except Exception:  # noqa: BLE001 - database briefly unavailable: try next round
                log.warning("job poller could not recover stale jobs", exc_info=True)
            enqueue_periodic(self.services)  # logs its own failures, job by job
            try:
                with self.services.db.session_scope() as s:
                    ids = s.scalars(sa.select(Job.id).where(Job.state == JobState.QUEUED.value)
                                    .order_by(Job.id).limit(50)).all()
                for job_id in ids:
                    self.submit(job_id)
            except Exception:  # noqa: BLE001 - database briefly unavailable: try next round
                log.warning("job poller could not read the queue", exc_info=True)


class CeleryRunner:
    """Sends job ids to Celery workers (`avatar worker`); the row in the database is the truth."""

    def __init__(self, services):
        from avatar.jobs.celery_app import make_celery

        self.services = services
        self.celery = make_celery(services.config)

    def submit(self, job_id: int) -> None:
        try:
            self.celery.send_task("avatar.execute_job", args=[job_id], retry=False)
        except Exception as exc:  # kombu raises OperationalError and friends
            raise RunnerUnavailable(
                f"job {job_id} is saved but the job queue ({self.services.config.BROKER_URL}) is unreachable: {exc}"
            ) from exc

    def stop(self) -> None:
        pass


def start_runner(services):
    """Builds the configured runner and attaches it to services (services.runner)."""
    kind = services.config.JOB_RUNNER
    if kind == "threads":
        services.runner = ThreadRunner(services, services.config.JOB_THREADS, services.config.JOB_POLL_SECONDS).start()
    elif kind == "celery":
        services.runner = CeleryRunner(services)
    else:
        services.runner = None
    return services.runner
