"""One job API for everything long-running: enqueue() (or add_job() + submit() inside a caller's
transaction), progress, cancel; runners execute."""
from avatar.jobs.core import JobCancelled, JobContext, add_job, enqueue, execute, job, request_cancel, submit

__all__ = ["JobCancelled", "JobContext", "add_job", "enqueue", "execute", "job", "request_cancel", "submit"]
