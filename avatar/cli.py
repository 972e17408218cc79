"""The `avatar` command: serve, db, admin, worker, audit, …"""
from __future__ import annotations

import json
import os
import sys
import threading
import time

import click


def _services(start_jobs: bool = False):
    from avatar.config import Config, ConfigError
    from avatar.services import Services

    try:
        svc = Services(Config.from_env())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if start_jobs:
        from avatar.jobs.runners import start_runner

        start_runner(svc)
    return svc


# what SQLite and PostgreSQL say when the schema is missing or older than the code
_UNMIGRATED = ("no such table", "no such column", "undefinedtable", "undefinedcolumn")


def _unmigrated(exc: BaseException) -> bool:
    import sqlalchemy.exc as sa_exc

    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    text = f"{type(exc.orig).__name__} {exc.orig}".lower()
    return any(m in text for m in _UNMIGRATED) or ("does not exist" in text and ("relation" in text or "column" in text))


class _Main(click.Group):
    """Every command: a database without this version's tables is one line ("run `avatar db
    upgrade`", exit 1), not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as exc:  # noqa: BLE001 - only the unmigrated case is translated
            if _unmigrated(exc):
                raise click.ClickException("the database has no tables for this version of avatar yet: "
                                           "run `avatar db upgrade` first") from exc
            raise


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """avatar: identity-verified avatars and voice cloning, consent first.

    Settings come from AVATAR_* environment variables (see README); with none set it runs
    embedded: SQLite, encrypted media and jobs under ./instance.
    """


@main.command()
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


@main.group()
def db():
    """Database schema commands."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str):
    """Applies migrations up to REVISION (default: head)."""
    from avatar.store.migrate import upgrade

    svc = _services()
    upgrade(svc.config.DATABASE_URL, revision)
    click.echo(f"database at {revision}")


@db.command("current")
def db_current():
    """Prints the database's migration revision."""
    from avatar.store.migrate import current

    click.echo(current(_services().config.DATABASE_URL) or "(empty)")


@main.group()
def admin():
    """Account administration."""


@admin.command("create")
@click.option("--email", required=True)
@click.option("--name", default="Administrator", show_default=True)
@click.option("--role", type=click.Choice(["user", "reviewer", "admin"]), default="admin", show_default=True)
@click.option("--password", envvar="AVATAR_ADMIN_PASSWORD", prompt=True, hide_input=True, confirmation_prompt=True)
def admin_create(email: str, name: str, role: str, password: str):
    """Creates an account with a role (admin by default)."""
    from avatar.domain import DomainError
    from avatar.domain.accounts import register
    from avatar.store.audit import record
    from avatar.store.models import Role

    svc = _services()
    try:
        with svc.db.session_scope() as s:
            user = register(s, email, name, password, role=Role(role))
            uid = user.id
    except DomainError as exc:
        raise click.ClickException(str(exc)) from exc
    record(svc.db, "admin.account_created", target_type="user", target_id=uid, details={"role": role, "via": "cli"})
    click.echo(f"created {role} {email} (id {uid})")


@admin.command("ensure")
@click.option("--email", envvar="AVATAR_ADMIN_EMAIL", default="admin@localhost.localdomain", show_default=True)
def admin_ensure(email: str):
    """Creates the first admin if there is none. Password: AVATAR_ADMIN_PASSWORD, or a random
    one printed once."""
    from avatar.domain import DomainError
    from avatar.domain.accounts import ensure_admin
    from avatar.store.audit import record

    svc = _services()
    try:
        with svc.db.session_scope() as s:
            user, generated = ensure_admin(s, email, os.environ.get("AVATAR_ADMIN_PASSWORD"))
            uid = user.id if user else None
    except DomainError as exc:
        raise click.ClickException(f"AVATAR_ADMIN_PASSWORD: {exc}") from exc
    if uid is None:
        click.echo("an admin account exists")
        return
    record(svc.db, "admin.account_created", target_type="user", target_id=uid, details={"via": "ensure"})
    click.echo(f"created admin {email}")
    if generated:
        click.echo(f"  password (shown once, store it now): {generated}")


@main.command()
@click.option("--concurrency", default=2, show_default=True, type=int)
@click.option("--loglevel", default="info", show_default=True)
def worker(concurrency: int, loglevel: str):
    """Runs a Celery worker (AVATAR_JOB_RUNNER=celery, AVATAR_BROKER_URL=redis://…)."""
    from avatar.jobs.celery_app import make_celery

    svc = _services()
    if not svc.config.BROKER_URL:
        raise click.ClickException("set AVATAR_BROKER_URL (e.g. redis://127.0.0.1:6379/0) to run a worker")
    celery = make_celery(svc.config)
    _start_requeue_thread(svc, celery)
    celery.worker_main(["worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}",
                        "--without-gossip", "--without-mingle", "-n", f"avatar@%h-{os.getpid()}"])


def _start_requeue_thread(svc, celery) -> None:
    """Re-sends jobs whose worker died, and queued jobs that never reached the broker."""
    from datetime import timedelta

    import sqlalchemy as sa

    from avatar.jobs.core import recover_stale
    from avatar.jobs.periodic import enqueue_periodic
    from avatar.store.db import utcnow
    from avatar.store.models import Job, JobState

    def loop():
        while True:  # a daemon thread: it ends with the worker process
            time.sleep(svc.config.JOB_POLL_SECONDS * 5)
            ids = []
            for step in (recover_stale, enqueue_periodic):
                try:  # one failing step does not keep the others from running
                    ids += step(svc)
                except Exception as exc:  # noqa: BLE001 - database or broker briefly down
                    click.echo(f"requeue: {exc}", err=True)
            try:
                cutoff = utcnow() - timedelta(seconds=svc.config.JOB_LEASE_SECONDS)
                with svc.db.session_scope() as s:
                    ids += s.scalars(sa.select(Job.id).where(Job.state == JobState.QUEUED.value,
                                                             Job.created_at < cutoff).limit(100)).all()
                for job_id in set(ids):
                    celery.send_task("avatar.execute_job", args=[job_id], retry=False)
            except Exception as exc:  # noqa: BLE001 - database or broker briefly down
                click.echo(f"requeue: {exc}", err=True)

    threading.Thread(target=loop, name="avatar-requeue", daemon=True).start()


@main.group()
def keys():
    """Encryption key management."""


@keys.command("rotate")
def keys_rotate():
    """Re-wraps every data key under a new master key (media is not re-encrypted). Stop the app
    and workers first. With AVATAR_MASTER_KEY set, give the new key as AVATAR_NEW_MASTER_KEY and
    set it as AVATAR_MASTER_KEY afterwards; otherwise instance/master.key is rotated in place."""
    import base64
    from pathlib import Path

    from avatar.store import rotation
    from avatar.store.audit import record

    svc = _services()
    cfg = svc.config
    try:
        if cfg.MASTER_KEY:
            new_b64 = os.environ.get("AVATAR_NEW_MASTER_KEY", "")
            try:
                new_key = base64.b64decode(new_b64, validate=True)
            except ValueError:
                new_key = b""
            if len(new_key) != 32:
                raise click.ClickException("AVATAR_MASTER_KEY is set: give the new key as AVATAR_NEW_MASTER_KEY "
                                           "(base64 of 32 bytes, e.g. `openssl rand -base64 32`)")
            result = rotation.rotate_env_key(svc.db, cfg.master_key(), new_key)
        else:
            master_file = Path(cfg.INSTANCE_PATH) / "master.key"
            if not master_file.is_file():
                raise click.ClickException(f"no master key at {master_file}: nothing to rotate")
            result = rotation.rotate_file_key(svc.db, master_file)
        record(svc.db, "keys.rotated", details={"old": result.old_key_id, "new": result.new_key_id,
                                                "rewrapped": result.rewrapped})
    finally:
        svc.close()
    click.echo(f"master key {result.old_key_id} -> {result.new_key_id}: {result.rewrapped} data keys re-wrapped"
               + (f" ({result.already_new} already were)" if result.already_new else ""))
    if result.retired_file:
        click.echo(f"the old key is kept as {result.retired_file}: it reads database backups taken before now; "
                   "move it offline with those backups, then delete it here")
    else:
        click.echo("now set AVATAR_MASTER_KEY to the new key and restart the app and workers")


@main.group()
def audit():
    """Audit trail commands."""


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def audit_verify(as_json: bool):
    """Walks the hash chain; exits 1 naming the first broken event."""
    from avatar.store.audit import verify_chain

    report = verify_chain(_services().db)
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    elif report.ok:
        click.echo(f"audit chain ok: {report.events} events")
    else:
        click.echo(f"audit chain BROKEN at event id {report.first_broken_id} (seq {report.first_broken_seq}): "
                   f"{report.reason}", err=True)
    sys.exit(0 if report.ok else 1)


from avatar.cli_analysis import register as _register_analysis  # noqa: E402
from avatar.cli_demo import register as _register_demo  # noqa: E402
from avatar.cli_models import register as _register_models  # noqa: E402
from avatar.cli_guard import register as _register_guard  # noqa: E402
from avatar.cli_jobs import register as _register_jobs  # noqa: E402
from avatar.cli_verify import register as _register_verify  # noqa: E402

_register_analysis(main)
_register_demo(main)
_register_models(main)
_register_guard(main)
_register_jobs(main)
_register_verify(main)

if __name__ == "__main__":  # pragma: no cover
    main()
