"""Runners: who executes queued jobs. Threads inside the app (default) or Celery workers."""
from __future__ import annotations

import logging
import queue
import threading

from avatar.jobs.core import WORKER_ID, execute, submit_on_commit
from avatar.jobs.requeue import requeue_due

log = logging.getLogger(__name__)


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

    def submit_later(self, job_id: int, seconds: float) -> None:
        """A retry after `seconds`: the job waits in the database (run_after), and the poller sends
        it once it is due, so no thread waits for it and a restart in between loses nothing."""
        if seconds <= 0:
            self.submit(job_id)

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
            for job_id in requeue_due(self.services):  # logs its own failures, step by step
                self.submit(job_id)


def start_runner(services):
    """Builds the configured runner and attaches it to services (services.runner)."""
    kind = services.config.JOB_RUNNER
    submit_on_commit(services)
    if kind == "threads":
        services.runner = ThreadRunner(services, services.config.JOB_THREADS, services.config.JOB_POLL_SECONDS).start()
    elif kind == "celery":
        from avatar.jobs.celery_app import CeleryRunner  # Celery is imported only where it is used

        services.runner = CeleryRunner(services)
    else:
        services.runner = None
    return services.runner
