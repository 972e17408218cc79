from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from avatar.store.db import Base, utcnow


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(Base):
    """Every long-running task, whatever runner executes it."""

    __tablename__ = "jobs"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(64), index=True)
    payload: so.Mapped[dict] = so.mapped_column(sa.JSON, default=dict)
    state: so.Mapped[str] = so.mapped_column(sa.String(16), default=JobState.QUEUED.value, index=True)
    progress: so.Mapped[int] = so.mapped_column(default=0)
    message: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    result: so.Mapped[Optional[dict]] = so.mapped_column(sa.JSON)
    error: so.Mapped[Optional[str]] = so.mapped_column(sa.Text)
    owner_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    subject_id: so.Mapped[Optional[int]] = so.mapped_column(index=True)
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    max_attempts: so.Mapped[int] = so.mapped_column(default=3)
    cancel_requested: so.Mapped[bool] = so.mapped_column(default=False)
    worker_id: so.Mapped[Optional[str]] = so.mapped_column(sa.String(100))
    lease_until: so.Mapped[Optional[datetime]]
    run_after: so.Mapped[Optional[datetime]]  # a queued job waits until then (a retry with backoff)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow, index=True)
    started_at: so.Mapped[Optional[datetime]]
    finished_at: so.Mapped[Optional[datetime]]

    def public_dict(self) -> dict:
        """What the UI and API may show the job's owner."""
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "progress": self.progress,
            "message": self.message,
            "result": self.result if self.state == JobState.SUCCEEDED.value else None,
            # the first line only: the stored error may continue with a traceback for operators
            "error": self.error.splitlines()[0] if self.error and self.state == JobState.FAILED.value else None,
            "created_at": self.created_at.isoformat() + "Z",
            "finished_at": self.finished_at.isoformat() + "Z" if self.finished_at else None,
        }


class PeriodicSchedule(Base):
    """When each periodic job is next due, shared by every process that enqueues them: the process
    whose conditional update moves next_due_at on is the one that enqueues it for that period."""

    __tablename__ = "periodic_schedule"

    name: so.Mapped[str] = so.mapped_column(sa.String(64), primary_key=True)
    next_due_at: so.Mapped[datetime]
    last_enqueued_at: so.Mapped[Optional[datetime]]
    last_job_id: so.Mapped[Optional[int]]
