"""The `avatar` command group: every command module's commands under one group whose errors
for an unmigrated database are one line."""
from __future__ import annotations

import click

from avatar.cli import admin, analysis, audit, db, demo, guard, jobs, keys, models, server, verify

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


for module in (server, db, admin, keys, audit, jobs, analysis, guard, models, verify, demo):
    for command in module.COMMANDS:
        main.add_command(command)
