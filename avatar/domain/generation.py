"""Generation requests: gate, script screening, the record `avatar verify` finds, the job."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import sqlalchemy as sa

from avatar.domain import NotFound
from avatar.domain.actor import Actor, audit
from avatar.domain.enrollment import current_enrollment
from avatar.domain.gate import ConsentGate
from avatar.domain.scripts import ScriptRefused, screen
from avatar.store.db import utcnow
from avatar.store.models import Generation
from avatar.synthesis.label.payload import new_watermark_id

RESULT_DAYS = 7
SPOKEN_NOTICE = "This message was generated with artificial intelligence."
# The audio watermark (a 64-bit payload repeating every 1.4 s) needs length to be read back: of 8
# clips of the offline voice of 2.5-3.3 s one read, of 19 with the notice (4.1-6.6 s) 17 did (the
# README has the figures on real speech). So a shorter clip ends with the spoken notice, which
# labels it aloud and makes its mark far more likely to read, and a script has MIN_WORDS at least.
MARKED_SECONDS = 5.0
MIN_WORDS = 3


def with_notice(script: str) -> str:
    """The script ending with the spoken notice (once)."""
    return script if script.endswith(SPOKEN_NOTICE) else f"{script.rstrip()} {SPOKEN_NOTICE}"


def request(session, gate: ConsentGate, requester_id: int, subject_id: int, modality: str, purpose: str,
            script: str, authenticated_at: datetime | None, backend: str, days: int = RESULT_DAYS,
            spoken_notice: bool = False, *, by: Actor) -> Generation:
    """Checks the gate (recent log-in included) and the script, then records the generation and
    its audit event (generation.requested) in the session's transaction. With spoken_notice the
    voice ends by saying that the message was generated with AI (a clip under MARKED_SECONDS gets
    it anyway, when it is rendered)."""
    grant = gate.grant(requester_id, subject_id, modality, purpose, authenticated_at)
    text = screen(script, purpose)
    if len(re.findall(r"\w+", text)) < MIN_WORDS:
        raise ScriptRefused(f"Write at least {MIN_WORDS} words: a shorter clip cannot carry its invisible watermark.")
    if spoken_notice:
        text = with_notice(text)
    while True:
        wm = new_watermark_id()
        if session.scalar(sa.select(Generation.id).where(Generation.watermark_id == wm)) is None:
            break
    gen = Generation(requester_id=requester_id, subject_id=subject_id, consent_id=grant.consent_id, modality=modality,
                     purpose=purpose, script=text, backend=backend, watermark_id=wm,
                     expires_at=utcnow() + timedelta(days=days))
    session.add(gen)
    session.flush()
    audit(session, by, "generation.requested", target_type="generation", target_id=gen.id,
          details={"subject": subject_id, "modality": modality, "purpose": purpose, "watermark_id": wm})
    return gen


def pictures_only(session, subject_ids: list[int]) -> list[int]:
    """Of these subjects, those whose enrolled face has no footage (enrolled before it was kept): a
    video of them animates their reference picture instead of their own footage."""
    out = []
    for sid in subject_ids:
        enr = current_enrollment(session, sid)
        if enr is not None and enr.face_profile is not None and enr.face_profile.footage_media_id is None:
            out.append(sid)
    return out


def for_user(session, user_id: int, limit: int = 50) -> list[Generation]:
    """The user's generations, as requester or as subject, newest first."""
    return session.scalars(sa.select(Generation).where(sa.or_(
        Generation.requester_id == user_id, Generation.subject_id == user_id))
        .order_by(Generation.id.desc()).limit(limit)).all()


def status(gen: Generation, now: datetime | None = None) -> str:
    """revoked, expired, ready (downloadable) or pending."""
    if gen.revoked_at is not None:
        return "revoked"
    if gen.expires_at is not None and gen.expires_at < (now or utcnow()):
        return "expired"
    return "ready" if gen.output_media_id is not None else "pending"


def visible_to(session, user_id: int, generation_id: int) -> Generation:
    """The generation if the user requested it or is its subject; NotFound otherwise."""
    gen = session.get(Generation, generation_id)
    if gen is None or user_id not in (gen.requester_id, gen.subject_id):
        raise NotFound("No such generation.")
    return gen
