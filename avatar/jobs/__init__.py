"""One job API for everything long-running: enqueue(), progress, cancel; runners execute."""
from avatar.jobs.core import JobCancelled, JobContext, enqueue, execute, job, request_cancel

__all__ = ["JobCancelled", "JobContext", "enqueue", "execute", "job", "request_cancel"]
