"""Protected persons: public figures who asked not to be cloned. Their templates join the guard."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from avatar.domain import Conflict, DomainError
from avatar.domain.actor import Actor, audit
from avatar.store.media import MediaStore
from avatar.store.models import ProtectedPerson, ProtectedTemplate
from avatar.store.templates import save_template


def add_person(session: Session, media: MediaStore, name: str, faces: list, voices: list, *,
               by: Actor) -> ProtectedPerson:
    """Adds a person with face templates (FaceSample: template + aligned reference PNG) and voice
    templates (audited). At least one sample is needed; the name must be new."""
    name = " ".join((name or "").split())
    if not 2 <= len(name) <= 120:
        raise DomainError("Give the person's name (2–120 characters).")
    if not faces and not voices:
        raise DomainError("Give at least one photo or voice clip.")
    if session.scalar(sa.select(ProtectedPerson.id).where(ProtectedPerson.name == name)) is not None:
        raise Conflict(f"{name} is already protected.")
    person = ProtectedPerson(name=name, created_by_id=by.user_id)
    session.add(person)
    session.flush()
    for template, reference_png in faces:
        t = save_template(session, media, person.subject_id, "protected_face", template)
        ref = media.put(session, person.subject_id, "protected_ref", reference_png, "image/png")
        session.add(ProtectedTemplate(person_id=person.id, modality="face", template_media_id=t.id,
                                      reference_media_id=ref.id))
    for template in voices:
        t = save_template(session, media, person.subject_id, "protected_voice", template)
        session.add(ProtectedTemplate(person_id=person.id, modality="voice", template_media_id=t.id))
    session.flush()
    audit(session, by, "protected.added", target_type="protected_person", target_id=person.id,
          details={"faces": len(faces), "voices": len(voices)})
    return person


def list_people(session: Session) -> list[dict]:
    rows = session.execute(
        sa.select(ProtectedPerson, ProtectedTemplate.modality, sa.func.count(ProtectedTemplate.id))
        .join(ProtectedTemplate, ProtectedTemplate.person_id == ProtectedPerson.id, isouter=True)
        .group_by(ProtectedPerson.id, ProtectedTemplate.modality).order_by(ProtectedPerson.name)).all()
    people: dict[int, dict] = {}
    for p, modality, n in rows:
        entry = people.setdefault(p.id, {"id": p.id, "name": p.name, "faces": 0, "voices": 0,
                                         "added": p.created_at.isoformat() + "Z"})
        if modality:
            entry["faces" if modality == "face" else "voices"] = n
    return list(people.values())
