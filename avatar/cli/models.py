"""`avatar models pull|verify`: the XTTS-v2 model folder, fetched with its checksums verified."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from avatar.synthesis.speech.pull import DEFAULT_BASE, MODELS


def _default_dir() -> Path:
    from avatar.config import Config, ConfigError
    from avatar.jobs.generation import xtts_dir

    try:
        return xtts_dir(Config.from_env())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def models():
    """Model files that are not shipped with the packages (XTTS-v2)."""


@models.command("pull")
@click.argument("model", type=click.Choice(sorted(MODELS)))
@click.option("--dir", "folder", type=click.Path(file_okay=False), help="Target folder (default: AVATAR_XTTS_DIR or models/xtts_v2).")
@click.option("--base-url", default=DEFAULT_BASE, show_default=True, envvar="AVATAR_MODELS_BASE_URL",
              help="A Hugging Face compatible server or mirror.")
@click.option("--revision", default="main", show_default=True, help="Branch, tag or commit of the model repository.")
@click.option("--pin", "pin_file", type=click.Path(exists=True, dir_okay=False),
              help="A checksums.json whose sha256 values every file must match.")
@click.option("--accept-license", is_flag=True, help="Accept the model weights' licence (named when it is missing).")
def pull_command(model: str, folder: str | None, base_url: str, revision: str, pin_file: str | None,
                 accept_license: bool):
    """Downloads MODEL, checks every file against the server's published hash and any pinned
    checksums, and only then moves the folder into place. The weights' licence must be accepted
    (--accept-license): XTTS-v2's allows non-commercial use only. Exit 1 on any failure."""
    from avatar.synthesis.speech.pull import PullError, pull, read_lock_file

    lic = MODELS[model]["license"]
    terms = f"{model}'s weights are under the {lic['name']} ({lic['url']})" + (
        "" if lic["commercial_use"] else ": non-commercial use only")
    if not accept_license:
        raise click.ClickException(f"{terms}. Read it, then pull again with --accept-license; nothing was fetched.")
    click.echo(f"{terms}; accepted with --accept-license.")
    target = Path(folder) if folder else _default_dir()
    try:
        fetched = pull(model, target, base_url, revision, read_lock_file(Path(pin_file)) if pin_file else None)
    except PullError as exc:
        raise click.ClickException(f"pull {model} failed, {target} unchanged: {exc}") from exc
    for f in fetched:
        click.echo(f"{f.name}: {f.size} bytes, sha256 {f.sha256} (checked against {f.published})")
    click.echo(f"{model} ready in {target}")


@models.command("verify")
@click.argument("model", type=click.Choice(sorted(MODELS)))
@click.option("--dir", "folder", type=click.Path(file_okay=False))
def verify_command(model: str, folder: str | None):
    """Re-hashes the model folder against its checksums.json; exit 1 if any file changed or is missing."""
    from avatar.synthesis.speech.pull import PullError, verify_folder

    try:
        report = verify_folder(Path(folder) if folder else _default_dir())
    except PullError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(report, indent=2))
    sys.exit(0 if report["ok"] else 1)


COMMANDS = [models]
