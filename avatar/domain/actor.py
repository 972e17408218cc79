"""Who does an action, and through which door: every audit event names both.

An entry point (a web request, an API token, a CLI command, a job) builds one Actor and passes it
to the action; the action appends its audit event to its own transaction with audit(), so the
action and its event are committed together by the entry point's one commit, or not at all."""
from __future__ import annotations

from dataclasses import dataclass

from avatar.store import audit as chain

VIA = ("web", "api", "cli", "job")


@dataclass(frozen=True)
class Actor:
    via: str  # one of VIA
    user_id: int | None = None  # the account acting (None: the operator at the command line, or the system)
    ip: str | None = None
    token_id: int | None = None  # the API token a request came with
    job_id: int | None = None  # the job doing the work

    def __post_init__(self):
        if self.via not in VIA:
            raise ValueError(f"an actor comes via one of {', '.join(VIA)}, not {self.via!r}")

    @classmethod
    def cli(cls) -> "Actor":
        return cls("cli")

    @classmethod
    def job(cls, job_id: int, user_id: int | None = None) -> "Actor":
        """A job, acting for the account that queued it (None for periodic jobs)."""
        return cls("job", user_id=user_id, job_id=job_id)

    def describe(self) -> dict:
        """What the audit event's details say of the door: {"via", "token", "job"} as they apply."""
        out = {"via": self.via}
        if self.token_id is not None:
            out["token"] = self.token_id
        if self.job_id is not None:
            out["job"] = self.job_id
        return out


def audit(session, actor: Actor, action: str, *, target_type: str | None = None, target_id: int | None = None,
          details: dict | None = None):
    """Appends the action's audit event to session's open transaction (the caller commits both)."""
    return chain.append(session, action, actor_id=actor.user_id, target_type=target_type, target_id=target_id,
                        ip=actor.ip, details={**actor.describe(), **(details or {})})
