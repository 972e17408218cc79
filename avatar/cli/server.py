"""`avatar serve` (the web app under waitress, with the configured job runner) and `avatar worker`
(a Celery worker for the scale-out runner)."""
from __future__ import annotations

import os

import click

from avatar.cli.common import services


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int, help="HTTP worker threads")
def serve(host: str, port: int, threads: int):
    """Serves the web app (waitress), with the configured job runner."""
    from waitress import serve as waitress_serve

    from avatar import create_app
    from avatar.config import ConfigError

    try:
        app = create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"avatar: serving on http://{host}:{port} (jobs: {app.config['AVATAR'].JOB_RUNNER})")
    _oversize_answers_like_the_app(app.config["MAX_CONTENT_LENGTH"])
    waitress_serve(app, host=host, port=port, threads=threads, max_request_body_size=app.config["MAX_CONTENT_LENGTH"],
                   ident="avatar")


def _oversize_answers_like_the_app(limit: int) -> None:
    """Waitress refuses a body over the limit itself, before the app sees it (so it never spools
    one to disk); make that refusal the app's JSON 413 instead of waitress's plain text."""
    import json

    from waitress import parser, utilities

    class TooLarge(utilities.RequestEntityTooLarge):
        def to_response(self, ident=None):
            body = json.dumps({"error": f"The upload is too large: the limit is {limit // (1024 * 1024)} MB.",
                               "status": 413}).encode()
            return f"{self.code} {self.reason}", [("Content-Type", "application/json")], body

    parser.RequestEntityTooLarge = TooLarge


@click.command()
@click.option("--concurrency", default=2, show_default=True, type=int)
@click.option("--loglevel", default="info", show_default=True)
def worker(concurrency: int, loglevel: str):
    """Runs a Celery worker (AVATAR_JOB_RUNNER=celery, AVATAR_BROKER_URL=redis://…)."""
    from celery.signals import worker_ready

    from avatar.jobs.celery_app import make_celery, start_requeue_thread

    svc = services()
    if not svc.config.BROKER_URL:
        raise click.ClickException("set AVATAR_BROKER_URL (e.g. redis://127.0.0.1:6379/0) to run a worker")
    celery = make_celery(svc.config)
    # the requeue thread starts once the pool's processes are forked: a process forked while the
    # thread holds a lock (its first query configures SQLAlchemy's mappers under one) inherits the
    # lock held and can hang on its first job (seen once: a job received, never run until requeued)
    worker_ready.connect(lambda **_: start_requeue_thread(svc, celery), weak=False)
    celery.worker_main(["worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}",
                        "--without-gossip", "--without-mingle", "-n", f"avatar@%h-{os.getpid()}"])


COMMANDS = [serve, worker]
