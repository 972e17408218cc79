"""Celery over Redis for scale-out: the same job functions, executed by `avatar worker`."""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from celery import Celery
from celery.signals import worker_process_init

from avatar.jobs.core import RunnerUnavailable
from avatar.jobs.requeue import requeue_due
from avatar.store.db import utcnow

log = logging.getLogger(__name__)
_services = None


SHORT_WAIT_SECONDS = 60


class CeleryRunner:
    """Sends job ids to Celery workers (`avatar worker`); the row in the database is the truth."""

    def __init__(self, services):
        self.services = services
        self.celery = make_celery(services.config)

    def submit(self, job_id: int) -> None:
        try:
            self.celery.send_task("avatar.execute_job", args=[job_id], retry=False)
        except Exception as exc:  # kombu raises OperationalError and friends
            raise RunnerUnavailable(
                f"job {job_id} is saved but the job queue ({self.services.config.BROKER_URL}) is unreachable: {exc}"
            ) from exc

    def submit_later(self, job_id: int, seconds: float) -> None:
        """A retry after `seconds`. A short wait is a countdown message; a longer one is left to
        the workers' requeue thread, which sends the job once it is due (a worker holding a message
        for hours would see the broker hand it out again after its visibility timeout)."""
        if seconds > SHORT_WAIT_SECONDS:
            return
        try:
            self.celery.send_task("avatar.execute_job", args=[job_id], retry=False, countdown=seconds)
        except Exception as exc:  # kombu raises OperationalError and friends
            raise RunnerUnavailable(f"job {job_id} is queued but the job queue is unreachable: {exc}") from exc

    def stop(self) -> None:
        pass


def make_celery(config) -> Celery:
    app = Celery("avatar", broker=config.BROKER_URL)
    app.conf.update(
        task_acks_late=True,               # a worker killed mid-job leaves the message for another
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_timeout=3,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"socket_connect_timeout": 3, "socket_timeout": 5, "max_retries": 0},
        task_ignore_result=True,
        worker_hijack_root_logger=False,
    )

    @app.task(name="avatar.execute_job")
    def execute_job(job_id: int):
        from avatar.jobs.core import execute

        return execute(_worker_services(config), job_id)

    @app.task(name="avatar.recover_stale")
    def recover(_=None):
        from avatar.jobs.core import recover_stale

        services = _worker_services(config)
        for job_id in recover_stale(services):
            execute_job.delay(job_id)

    return app


def _worker_services(config):
    """Services for this worker process, built once (models and connections are reused)."""
    global _services
    if _services is None:
        from avatar.jobs import definitions  # noqa: F401 - registers the job functions
        from avatar.jobs.core import submit_on_commit
        from avatar.services import Services

        services = Services(config)
        services.runner = CeleryRunner(services)  # retries are re-sent through the broker
        submit_on_commit(services)
        _services = services
    return _services


@worker_process_init.connect
def _reset_after_fork(**_):
    global _services
    _services = None


def start_requeue_thread(services, celery: Celery) -> threading.Thread:
    """In a worker process: every few poll periods, re-sends the jobs requeue_due() finds (a dead
    worker's, periodic ones that are due, and queued jobs older than a lease whose message never
    reached the broker). A daemon thread: it ends with the worker."""

    def loop():
        while True:
            time.sleep(services.config.JOB_POLL_SECONDS * 5)
            cutoff = utcnow() - timedelta(seconds=services.config.JOB_LEASE_SECONDS)
            for job_id in requeue_due(services, queued_before=cutoff):
                try:
                    celery.send_task("avatar.execute_job", args=[job_id], retry=False)
                except Exception:  # noqa: BLE001 - broker briefly down: the next pass sends them again
                    log.warning("job requeue: the broker is unreachable", exc_info=True)
                    break

    thread = threading.Thread(target=loop, name="avatar-requeue", daemon=True)
    thread.start()
    return thread
