"""What every command shares: the process's services, built from the environment's settings."""
from __future__ import annotations

import click


def services(start_jobs: bool = False):
    """Services.from_env(); a bad setting is one line (ClickException), not a traceback. With
    start_jobs, the configured job runner is started too."""
    from avatar.config import ConfigError
    from avatar.services import Services

    try:
        svc = Services.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if start_jobs:
        from avatar.jobs.runners import start_runner

        start_runner(svc)
    return svc
