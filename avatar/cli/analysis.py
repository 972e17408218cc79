"""`avatar eval …`, `avatar liveness …`, `avatar face …`: analysis from the command line (JSON)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click


def _emit(obj) -> None:
    click.echo(json.dumps(obj, default=_json_default))


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from exc


@click.group("eval")
def eval_group():
    """Accuracy of the analysis models on labeled data."""


# these commands print JSON and nothing else; --json is accepted for scripts that pass it
JSON_ONLY = click.option("--json", is_flag=True, expose_value=False, help="JSON is what this command prints (accepted, changes nothing)")


@eval_group.command("faces")
@click.option("--pairs", "pairs", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--images", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--threshold", type=float, default=None, help="dlib distance (default: the calibrated one)")
@JSON_ONLY
def eval_faces_cmd(pairs, images, threshold):
    """Face verification accuracy over a CSV of file_x,file_y,same."""
    from avatar.analysis.evaluation import eval_faces
    from avatar.analysis.face import FACE_MATCH_THRESHOLD

    try:
        _emit(eval_faces(Path(pairs), Path(images), threshold or FACE_MATCH_THRESHOLD))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@eval_group.command("voices")
@click.option("--dir", "root", required=True, type=click.Path(exists=True, file_okay=False))
@JSON_ONLY
def eval_voices_cmd(root):
    """Speaker verification EER over folders of utterances (one folder per speaker)."""
    from avatar.analysis.evaluation import eval_voices

    try:
        _emit(eval_voices(Path(root)))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@eval_group.command("codes")
@click.option("--dir", "root", required=True, type=click.Path(file_okay=False))
@JSON_ONLY
def eval_codes_cmd(root):
    """Spoken-code verification over STEM.wav + STEM.txt (the digits read, as words): the true code,
    a random code and one with two digits changed per file, with the enrollment rule."""
    from avatar.analysis.evaluation import eval_codes

    if not Path(root).is_dir():
        raise click.ClickException(f"{root}: not a readable folder")
    try:
        _emit(eval_codes(Path(root)))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("liveness")
def liveness_group():
    """Liveness analysis of recordings."""


@liveness_group.command("passive")
@click.argument("clip", type=click.Path(exists=True, dir_okay=False))
@JSON_ONLY
def liveness_passive_cmd(clip):
    """Passive liveness of a clip without a challenge: {"live", "score", "reasons", "events"}."""
    from avatar.analysis.checks import passive_check_bytes
    from avatar.analysis.media import MediaError

    try:
        result = passive_check_bytes(_read(clip)).as_dict()
    except MediaError as exc:
        raise click.ClickException(str(exc)) from exc
    _emit(result)


@liveness_group.command("speech")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def liveness_speech_cmd(file, as_json):
    """Is the speech in FILE generated? {"synthetic", "score", "watermark", "reasons"}; exit 0
    either way, 2 when FILE cannot be read as audio."""
    from avatar.analysis.checks import speech_check, speech_of_bytes
    from avatar.analysis.media import MediaError
    from avatar.config import Config, ConfigError
    from avatar.domain.verification import audio_mark_in

    try:
        key = Config.from_env().watermark_key()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        audio = speech_of_bytes(_read(file))
    except MediaError as exc:
        click.echo(f"Error: {file}: {exc}", err=True)
        sys.exit(2)
    result = speech_check(audio, audio_mark_in(audio, key) if audio.size else None)
    if as_json:
        _emit(result)
        return
    verdict = "synthetic" if result["synthetic"] else "flagged for listening" if result["flagged"] else "not flagged"
    score = "n/a" if result["score"] is None else f"{result['score']:.2f}"
    click.echo(f"{verdict} (score {score})")
    for reason in result["reasons"]:
        click.echo(f"- {reason}")


@click.group("face")
def face_group():
    """Face checks on images."""


@face_group.command("check")
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@JSON_ONLY
def face_check_cmd(image):
    """One usable human face in the image? {"ok", "faces", "reason"}; exit 0 either way."""
    from avatar.analysis.checks import face_check_bytes
    from avatar.analysis.media import MediaError

    try:
        _emit(face_check_bytes(_read(image)))
    except MediaError as exc:
        _emit({"ok": False, "faces": 0, "reason": str(exc)})
        sys.exit(0)


COMMANDS = [eval_group, liveness_group, face_group]
