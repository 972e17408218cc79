"""Periodic jobs (consent expiry, retention purge, orphan sweep): one schedule in the database,
shared by every process that enqueues them (each server's thread runner, each `avatar worker`), so
each runs once per period however many processes run; and when each last succeeded, for operators."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from avatar.jobs.core import add_job, submit
from avatar.store.db import utcnow
from avatar.store.models import Job, JobState, PeriodicSchedule

log = logging.getLogger(__name__)

# job name -> seconds between runs
PERIODIC = {"consent.expire": 3600, "media.purge_expired": 3600, "media.sweep_orphans": 6 * 3600}
RUN_ATTEMPTS = 3  # each is safe to run again; a transient error (database busy or restarting) is retried
LATE_AFTER_PERIODS = 2  # a job whose last success is older than this many periods is reported late


def enqueue_periodic(services, now: datetime | None = None) -> list[int]:
    """Enqueues each periodic job that is due; returns the ids enqueued.

    The schedule row is moved on by a conditional update (`next_due_at <= now`) in the same
    transaction that adds the job: of several processes passing at once exactly one wins the
    period, and a job that cannot be added leaves the schedule as it was, to be tried again at the
    next pass. A job still queued or running from an earlier period is not doubled; one failure
    does not keep the others from being enqueued. Times are the enqueuing process's clock (UTC)."""
    from avatar.jobs import definitions  # noqa: F401 - whichever process runs this loop knows every job

    now = utcnow() if now is None else now
    try:  # read first: most passes find nothing due and write nothing (SQLite has one writer at a time)
        with services.db.session_scope() as s:
            schedule = dict(s.execute(sa.select(PeriodicSchedule.name, PeriodicSchedule.next_due_at)).all())
    except Exception:  # noqa: BLE001 - database briefly down: the next pass tries again
        log.warning("could not read the periodic schedule", exc_info=True)
        return []
    missing = PERIODIC.keys() - schedule.keys()
    if missing:
        _add_schedules(services, missing, now)
    due = missing | {name for name, at in schedule.items() if at <= now}
    ids = []
    for name, every in PERIODIC.items():
        if name not in due:
            continue
        try:
            with services.db.session_scope() as s:
                won = s.execute(sa.update(PeriodicSchedule).where(
                    PeriodicSchedule.name == name, PeriodicSchedule.next_due_at <= now).values(
                    next_due_at=now + timedelta(seconds=every))).rowcount
                if not won:
                    continue
                busy = s.scalar(sa.select(Job.id).where(Job.name == name, Job.state.in_(
                    [JobState.QUEUED.value, JobState.RUNNING.value])).limit(1))
                if busy is not None:  # the earlier period's run is still under way: it stands for this one
                    continue
                job_id = add_job(s, name, {}, max_attempts=RUN_ATTEMPTS).id
                s.execute(sa.update(PeriodicSchedule).where(PeriodicSchedule.name == name).values(
                    last_enqueued_at=now, last_job_id=job_id))
            ids.append(job_id)
        except Exception:  # noqa: BLE001 - reported; nothing was recorded, the next pass tries again
            log.exception("could not enqueue the periodic job %s", name)
    for job_id in ids:
        try:
            submit(services, job_id)
        except Exception:  # noqa: BLE001 - the job is saved as queued; the queue sweep sends it again
            log.warning("periodic job %s is queued but the runner could not be told", job_id, exc_info=True)
    return ids


def _add_schedules(services, names: set[str], now: datetime) -> None:
    """A schedule row, due now, for each periodic job that has none (first start, or a new job)."""
    try:
        with services.db.session_scope() as s:
            s.add_all(PeriodicSchedule(name=name, next_due_at=now) for name in names)
    except sa.exc.IntegrityError:
        pass  # another process added them at the same moment; the conditional update decides who enqueues
    except Exception:  # noqa: BLE001 - database briefly down: the next pass tries again
        log.warning("could not add to the periodic schedule", exc_info=True)


def periodic_status(services, now: datetime | None = None) -> list[dict]:
    """For each periodic job: its period, when it is next due, when it last succeeded and last
    failed (with the error's first line), and `late`: no success within LATE_AFTER_PERIODS periods."""
    now = utcnow() if now is None else now
    out = []
    with services.db.session_scope() as s:
        for name, every in PERIODIC.items():
            row = s.get(PeriodicSchedule, name)
            ok = s.scalar(sa.select(sa.func.max(Job.finished_at)).where(
                Job.name == name, Job.state == JobState.SUCCEEDED.value))
            failed = s.scalars(sa.select(Job).where(Job.name == name, Job.state == JobState.FAILED.value)
                               .order_by(Job.finished_at.desc()).limit(1)).first()
            out.append({
                "name": name,
                "every_seconds": every,
                "next_due_at": _iso(row.next_due_at if row else None),
                "last_enqueued_at": _iso(row.last_enqueued_at if row else None),
                "last_succeeded_at": _iso(ok),
                "last_failed_at": _iso(failed.finished_at if failed else None),
                "last_error": (failed.error or "").splitlines()[0] if failed and failed.error else None,
                "late": ok is None or (now - ok).total_seconds() > LATE_AFTER_PERIODS * every,
            })
    return out


def _iso(t: datetime | None) -> str | None:
    return t.isoformat(timespec="seconds") + "Z" if t else None
