"""What a runner sends (again) on each pass of its poller, shared by the embedded runner and the
Celery workers' requeue thread."""
from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from avatar.jobs.core import due, recover_stale
from avatar.jobs.periodic import enqueue_periodic
from avatar.store.db import utcnow
from avatar.store.models import Job, JobState

log = logging.getLogger(__name__)


def requeue_due(services, queued_before: datetime | None = None, limit: int = 100) -> list[int]:
    """The ids of the jobs to send to a runner now, oldest first, each once: jobs whose worker died
    (recover_stale), periodic jobs that are due (enqueue_periodic), and jobs waiting in the queue
    (not those waiting for a retry's time; only those queued before `queued_before` when given: the broker's messages for newer ones
    are still on their way). A step that fails (database or broker briefly down) is logged and
    does not keep the others from running; the next pass tries again."""
    ids: list[int] = []
    for step in (recover_stale, enqueue_periodic):
        try:
            ids += step(services)
        except Exception:  # noqa: BLE001 - database briefly unavailable: the next pass tries again
            log.warning("job requeue: %s failed", step.__name__, exc_info=True)
    try:
        query = sa.select(Job.id).where(Job.state == JobState.QUEUED.value, due(utcnow()))
        if queued_before is not None:
            query = query.where(Job.created_at < queued_before)
        with services.db.session_scope() as s:
            ids += s.scalars(query.order_by(Job.id).limit(limit)).all()
    except Exception:  # noqa: BLE001 - database briefly unavailable: the next pass tries again
        log.warning("job requeue: could not read the queue", exc_info=True)
    return sorted(set(ids))
