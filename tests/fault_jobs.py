"""Jobs and worker entry points for the fault tests, run in separate processes that the tests kill.

`python -m tests.fault_jobs celery` runs `avatar worker` with these jobs registered;
`python -m tests.fault_jobs threads` runs the embedded runner (worker threads polling the database),
as `avatar serve` does. Both take their settings from the AVATAR_* environment.
"""
from __future__ import annotations

import sys
import threading
import time

from avatar.jobs import JobContext, job


@job("test.slow_first_attempt")
def slow_first_attempt(ctx: JobContext) -> dict:
    """Reports progress for payload['seconds'] on its first attempt (long enough to be killed), then
    finishes at once on a later one."""
    if ctx.attempt == 1:
        end = time.time() + ctx.payload["seconds"]
        while time.time() < end:
            ctx.progress(10, "working")
            time.sleep(0.2)
    return {"attempt": ctx.attempt}


def _run_threads() -> None:
    from avatar.config import Config
    from avatar.jobs import definitions  # noqa: F401 - the service's own jobs
    from avatar.jobs.runners import start_runner
    from avatar.services import Services

    start_runner(Services(Config.from_env()))  # as `avatar serve` does (AVATAR_JOB_RUNNER=threads)
    print("runner started", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    if sys.argv[1:] == ["threads"]:
        _run_threads()
    elif sys.argv[1:2] == ["celery"]:
        from avatar.cli import main

        main(["worker", *sys.argv[2:]])
    else:
        sys.exit("usage: python -m tests.fault_jobs threads|celery [worker options]")
