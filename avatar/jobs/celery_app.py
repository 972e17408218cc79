"""Celery over Redis for scale-out: the same job functions, executed by `avatar worker`."""
from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init

_services = None


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
        from avatar.services import Services

        from avatar.jobs.runners import CeleryRunner

        services = Services(config)
        services.runner = CeleryRunner(services)  # retries are re-sent through the broker
        _services = services
    return _services


@worker_process_init.connect
def _reset_after_fork(**_):
    global _services
    _services = None
