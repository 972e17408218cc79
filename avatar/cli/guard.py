"""`avatar protect …` and `avatar guard screen`: the protected-persons gallery from the command line."""
from __future__ import annotations

import json
from pathlib import Path

import click


def _samples(files: tuple[str, ...]):
    """(faces, voices) from files: each image must hold one usable human face; audio needs speech."""
    from avatar.analysis.checks import reference_face
    from avatar.analysis.face import FaceError
    from avatar.analysis.media import MediaError, MediaFile, decode_audio, decode_image
    from avatar.analysis.voice import VoiceError, speaker_template
    from avatar.domain.enrollment import png_bytes

    faces, voices = [], []
    for f in files:
        data = Path(f).read_bytes()
        try:
            with MediaFile(data) as mf:
                is_image = mf.probe.has_video and mf.probe.is_image
            if is_image:
                template, aligned = reference_face(decode_image(data))
                faces.append((template, png_bytes(aligned)))
            else:
                voices.append(speaker_template(decode_audio(data)))
        except (MediaError, VoiceError, FaceError) as exc:
            raise click.ClickException(f"{f}: {exc}") from exc
    return faces, voices


@click.group("protect")
def protect_group():
    """Protected persons: people who must never be cloned."""


@protect_group.command("add")
@click.argument("name")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def protect_add(name, files):
    """Protects NAME with reference photos and/or voice clips (FILE...)."""
    from avatar.cli.common import services
    from avatar.domain import DomainError
    from avatar.domain.actor import Actor
    from avatar.domain.protected import add_person

    faces, voices = _samples(files)
    svc = services()
    try:
        with svc.db.session_scope() as s:
            add_person(s, svc.media, name, faces, voices, by=Actor.cli())
    except DomainError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"protected {name}: {len(faces)} face(s), {len(voices)} voice(s)")


@protect_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def protect_list(as_json):
    """Lists protected persons and how many samples each has."""
    from avatar.cli.common import services
    from avatar.domain.protected import list_people

    with services().db.session_scope() as s:
        people = list_people(s)
    if as_json:
        click.echo(json.dumps(people))
    for p in [] if as_json else people:
        click.echo(f"{p['id']:>4}  {p['name']}  faces={p['faces']} voices={p['voices']}")


@click.group("guard")
def guard_group():
    """Likeness guard."""


@guard_group.command("screen")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", is_flag=True, expose_value=False, help="JSON is what this command prints (accepted, changes nothing)")
def guard_screen(file):
    """Screens an image or audio file against protected persons and enrolled people:
    {"match": NAME or null, "distance"} (face: dlib distance; voice: 1 − similarity)."""
    from avatar.cli.common import services
    from avatar.domain.guard import load_gallery

    faces, voices = _samples((file,))
    svc = services()
    modality, template = ("face", faces[0][0]) if faces else ("voice", voices[0])
    with svc.db.session_scope() as s:
        gallery = load_gallery(s, svc.media, modality, None, svc.config.GUARD_BACKEND)
        hit = gallery.match(template)
        nearest = gallery.candidates(template, k=1)
    if hit:
        distance = hit.get("distance", round(1 - hit.get("similarity", 0), 4))
    elif nearest:
        distance = round(nearest[0][1] if modality == "face" else 1 - nearest[0][1], 4)
    else:
        distance = None
    click.echo(json.dumps({"match": hit["label"] if hit else None, "kind": hit["kind"] if hit else None,
                           "modality": modality, "distance": distance}))


COMMANDS = [protect_group, guard_group]
