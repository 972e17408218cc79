"""Enrollment rules: the state machine, single-use liveness sessions, failure lockout, profiles
taken from the verified capture only, consent, and submission through the likeness guard."""
from __future__ import annotations

import hashlib
import random
import secrets
from datetime import datetime, timedelta

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from avatar.analysis.media import wav_bytes  # noqa: F401  (enrollment media are stored as WAV)
from avatar.domain import Conflict, DomainError, Forbidden, NotFound, TooManyAttempts
from avatar.domain.actor import Actor, audit
from avatar.domain.challenges import CONSENT_TEXT_VERSION, PURPOSES_LABELS, draw, prompt_times, schedule, statement_text
from avatar.store.db import utcnow
from avatar.store.media import MediaStore
from avatar.store.models import (
    Consent,
    Enrollment,
    FaceProfile,
    LivenessSession,
    MediaObject,
    User,
    VoiceProfile,
)
from avatar.store.models import (
    EnrollmentState as S,
)
from avatar.store.templates import save_template

TRANSITIONS = {
    S.STARTED: {S.CAPTURED},
    S.CAPTURED: {S.CONSENTED, S.CAPTURED},
    S.CONSENTED: {S.SUBMITTED},
    S.SUBMITTED: {S.APPROVED, S.REJECTED},
    S.APPROVED: {S.REVOKED, S.EXPIRED},
}
SESSION_MINUTES = 3
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=3)
LOCKOUT = timedelta(minutes=30)
MIN_VOICE_SECONDS = 10.0
PURPOSES = tuple(PURPOSES_LABELS)


def transition(enr: Enrollment, to: S) -> None:
    """Moves the enrollment to `to` if the state machine allows it, else Conflict."""
    current = S(enr.state)
    if to not in TRANSITIONS.get(current, set()):
        raise Conflict(f"An enrollment that is {current.value} cannot become {to.value}.")
    enr.state = to.value


def current_enrollment(session: Session, user_id: int) -> Enrollment | None:
    return session.scalars(sa.select(Enrollment).where(Enrollment.user_id == user_id)
                           .order_by(Enrollment.id.desc()).limit(1)).first()


MAX_CHALLENGES = 12  # per account and CHALLENGE_WINDOW: each one costs a recording slot on the server
CHALLENGE_WINDOW = timedelta(minutes=10)


def start(session: Session, user: User, service_name: str, rng: random.Random | None = None,
          now: datetime | None = None, *, by: Actor) -> LivenessSession:
    """Issues a new challenge (and an enrollment if there is none in progress); audited."""
    now = now or utcnow()
    if user.enroll_locked_until and user.enroll_locked_until > now:
        minutes = int((user.enroll_locked_until - now).total_seconds() // 60) + 1
        raise TooManyAttempts(f"Too many failed attempts. You can try again in {minutes} minutes.")
    recent = session.scalar(sa.select(sa.func.count(LivenessSession.id)).join(
        Enrollment, Enrollment.id == LivenessSession.enrollment_id).where(
        Enrollment.user_id == user.id, LivenessSession.issued_at > now - CHALLENGE_WINDOW))
    if recent >= MAX_CHALLENGES:
        raise TooManyAttempts(f"Too many challenges requested; wait {CHALLENGE_WINDOW.seconds // 60} minutes "
                              "and record the one you are shown.")
    enr = current_enrollment(session, user.id)
    if enr is not None and enr.state in (S.SUBMITTED.value, S.APPROVED.value):
        raise Conflict(f"Your enrollment is already {enr.state}.")
    if enr is None or enr.state not in (S.STARTED.value, S.CAPTURED.value):
        enr = Enrollment(user_id=user.id)
        session.add(enr)
        session.flush()
    actions, code = draw(rng)
    ls = LivenessSession(enrollment_id=enr.id, nonce=secrets.token_urlsafe(24), actions=actions, code=code,
                         statement=statement_text(user.full_name, service_name, code), plan=schedule(actions),
                         issued_at=now, expires_at=now + timedelta(minutes=SESSION_MINUTES))
    session.add(ls)
    session.flush()
    audit(session, by, "enrollment.challenge_issued", target_type="enrollment", target_id=enr.id,
          details={"liveness_session": ls.id, **_witness(user, by)})
    return ls


def _witness(user: User, by: Actor) -> dict:
    """In an assisted enrollment the admin acts for the person: the event names both."""
    return {"subject": user.id, "witnessed_by": by.user_id} if by.user_id not in (None, user.id) else {}


DOCUMENT_TYPES = {"passport": "Passport", "national_id": "National identity card",
                  "driving_licence": "Driving licence", "residence_permit": "Residence permit"}


def start_assisted(session: Session, admin: User, subject: User | None, document_type: str, last4: str, *,
                   by: Actor) -> Enrollment:
    """An in-person enrollment: an admin, on site, has checked the subject's ID document and will
    record them on the admin's device. Only the document type and its last 4 characters are kept.
    The same capture, consent and review follow; the admin cannot review it. subject None: no
    account has the email the admin gave."""
    from avatar.store.models import Role

    if not admin.has_role(Role.ADMIN):
        raise Forbidden("Only admins record assisted enrollments.")
    if subject is None:
        raise DomainError("No account has that email: the person registers first (on this device if they like), "
                          "then you start again.")
    if subject.id == admin.id:
        raise DomainError("An assisted enrollment is for someone else; enroll yourself on the enrollment page.")
    if document_type not in DOCUMENT_TYPES:
        raise DomainError(f"Choose the document type among: {', '.join(DOCUMENT_TYPES.values())}.")
    last4 = (last4 or "").strip().upper()
    if len(last4) != 4 or not last4.isalnum() or not last4.isascii():
        raise DomainError("Give exactly the last 4 letters or digits of the document number.")
    enr = current_enrollment(session, subject.id)
    if enr is not None and enr.state in (S.SUBMITTED.value, S.APPROVED.value):
        raise Conflict(f"{subject.full_name}'s enrollment is already {enr.state}.")
    # an unfinished self-enrollment is left as it is: the newest enrollment is the current one
    enr = Enrollment(user_id=subject.id, assisted_by_id=admin.id, id_document_type=document_type,
                     id_document_last4=last4, flags=["assisted"])
    session.add(enr)
    session.flush()
    audit(session, by, "enrollment.assisted_started", target_type="enrollment", target_id=enr.id,
          details={"subject": subject.id, "document_type": document_type, "document_last4": last4, "attested": True})
    return enr


def assisted_enrollment(session: Session, admin: User, enrollment_id: int | None) -> Enrollment | None:
    """The assisted enrollment an admin is recording now, if it is still in progress."""
    if enrollment_id is None:
        return None
    enr = session.get(Enrollment, enrollment_id)
    if enr is None or enr.assisted_by_id != admin.id or enr.state not in (
            S.STARTED.value, S.CAPTURED.value, S.CONSENTED.value):
        return None
    return enr


def claim_session(session: Session, user: User, nonce: str, now: datetime | None = None) -> LivenessSession:
    """The user's unused, unexpired session for nonce, marked used (single use) in this transaction."""
    now = now or utcnow()
    ls = session.scalar(sa.select(LivenessSession).where(LivenessSession.nonce == nonce))
    if ls is None:
        raise NotFound("Unknown or invalid session.")
    enr = session.get(Enrollment, ls.enrollment_id)
    if enr.user_id != user.id:
        raise NotFound("Unknown or invalid session.")
    if ls.used_at is not None:
        raise Conflict("This challenge was already used; start a new one.")
    if ls.expires_at < now:
        raise DomainError("This challenge has expired; start a new one.")
    res = session.execute(sa.update(LivenessSession).where(LivenessSession.id == ls.id, LivenessSession.used_at.is_(None))
                          .values(used_at=now, uploaded_at=now))
    if not res.rowcount:  # a concurrent upload won
        raise Conflict("This challenge was already used; start a new one.")
    session.refresh(ls)
    return ls


def receive_recording(session: Session, media: MediaStore, user: User, nonce: str, data: bytes, content_type: str,
                      reported_prompt_times: str | None, *, by: Actor) -> LivenessSession:
    """The capture for a challenge, once: the session claimed (single use), the page's prompt
    times checked and kept, the recording stored encrypted as evidence, and the upload audited, all
    in this transaction (the caller adds the verification job and commits)."""
    ls = claim_session(session, user, nonce)
    ls.prompt_times = prompt_times(reported_prompt_times, ls.plan)
    ls.recording_media_id = media.put(session, user.id, "evidence", data, content_type).id
    audit(session, by, "enrollment.capture_uploaded", target_type="enrollment", target_id=ls.enrollment_id,
          details={"liveness_session": ls.id, "bytes": len(data), **_witness(user, by)})
    return ls


def receive_reading(session: Session, media: MediaStore, user: User, data: bytes, content_type: str, *,
                    by: Actor) -> tuple[VoiceProfile, MediaObject]:
    """An extra reading of the paragraph for the voice of the captured likeness: stored encrypted
    and audited in this transaction (the caller adds the job that checks it and commits)."""
    enr = current_enrollment(session, user.id)
    vp = enr and enr.voice_profile
    if vp is None or enr.state != S.CAPTURED.value:
        raise Conflict("Complete the live capture (with your voice) first.")
    upload = media.put(session, user.id, "evidence", data, content_type)
    audit(session, by, "enrollment.voice_extra_uploaded", target_type="enrollment", target_id=enr.id,
          details={"bytes": len(data), **_witness(user, by)})
    return vp, upload


MAX_READINGS = 6  # on-camera readings per account and READING_WINDOW: each costs a check of ~30 s of CPU
READING_WINDOW = timedelta(hours=1)


def takes_reading(enr: Enrollment) -> bool:
    """A reading is taken (and, once checked, kept) only while the enrollment is captured: once
    submitted, what reviewers see must stay what is used."""
    return enr.state == S.CAPTURED.value and enr.face_profile is not None


def receive_camera_reading(session: Session, media: MediaStore, user: User, data: bytes, content_type: str, *,
                           by: Actor) -> tuple[Enrollment, MediaObject]:
    """The on-camera reading of analysis.reading.TEXT, after a passed live capture: stored encrypted
    as evidence and audited in this transaction (the caller adds the job that checks it and commits)."""
    enr = current_enrollment(session, user.id)
    if enr is None or not takes_reading(enr):
        raise Conflict("Complete the live capture first.")
    recent = session.scalar(sa.select(sa.func.count(MediaObject.id)).where(
        MediaObject.subject_id == user.id, MediaObject.kind == "reading",
        MediaObject.created_at > utcnow() - READING_WINDOW))
    if recent >= MAX_READINGS:
        raise TooManyAttempts(f"You recorded the reading {recent} times in the last hour; try again later.")
    upload = media.put(session, user.id, "reading", data, content_type)
    audit(session, by, "enrollment.reading_uploaded", target_type="enrollment", target_id=enr.id,
          details={"bytes": len(data), **_witness(user, by)})
    return enr, upload


def record_reading(session: Session, media: MediaStore, enr: Enrollment, footage: bytes, checks: dict,
                   voice: tuple[np.ndarray, bytes, float, bytes | None] | None) -> None:
    """A passed on-camera reading becomes the face profile's footage (replacing the statement's) and,
    where given, extends the voice: voice = (new template, combined reference WAV, its seconds, the
    offline voice's analysis of it or None)."""
    fp = enr.face_profile
    old = fp.footage_media_id
    fp.footage_media_id = media.put(session, enr.user_id, "face_footage", footage, "video/mp4").id
    if old is not None:
        media.delete(session, session.get(MediaObject, old))
    enr.scores = {**(enr.scores or {}), "reading": checks}
    if voice is not None and enr.voice_profile is not None:
        replace_voice(session, media, enr.voice_profile, *voice)
    session.flush()


def replace_voice(session: Session, media: MediaStore, vp: VoiceProfile, template: np.ndarray, wav: bytes,
                  seconds: float, analysis: bytes | None) -> None:
    """The voice profile's template, reference speech and its analysis replaced by ones made with
    more of the person's speech (a paragraph, a reading); the old media deleted."""
    old = [session.get(MediaObject, i) for i in (vp.template_media_id, vp.reference_media_id, vp.analysis_media_id)
           if i is not None]
    vp.template_media_id = save_template(session, media, vp.user_id, "voice_template", template).id
    vp.reference_media_id = media.put(session, vp.user_id, "voice_ref", wav, "audio/wav").id
    vp.analysis_media_id = _put_analysis(media, session, vp.user_id, analysis)
    vp.voiced_seconds = round(seconds, 2)
    for obj in old:
        media.delete(session, obj)


def add_voice_analysis(session: Session, media: MediaStore, vp: VoiceProfile, analysis: bytes) -> None:
    """Keeps the offline voice's analysis for a profile stored without one (from before it was made
    at enrollment)."""
    vp.analysis_media_id = _put_analysis(media, session, vp.user_id, analysis)


def _put_analysis(media: MediaStore, session: Session, user_id: int, analysis: bytes | None) -> int | None:
    """Stores the offline voice's analysis of a voice reference (encrypted like it); its media id."""
    if not analysis:
        return None
    return media.put(session, user_id, "voice_analysis", analysis, "application/octet-stream").id


LENGTH_SLACK = 5.0  # seconds a recording may run past its challenge (the page stops it on time)


def check_freshness(ls: LivenessSession, duration: float) -> None:
    """The recording must fit between issue and upload (it cannot have started before issue) and
    last about as long as the challenge."""
    elapsed = (ls.uploaded_at - ls.issued_at).total_seconds()
    if duration > elapsed + 2.0:
        raise DomainError("The recording is older than this challenge.")
    if duration < ls.plan.get("duration", 0) - 1.5:
        raise DomainError("The recording is shorter than the challenge.")
    if duration > ls.plan.get("duration", 0) + LENGTH_SLACK:
        raise DomainError("The recording is longer than the challenge; record again and let the page stop it.")


def record_failure(session: Session, user: User, ls: LivenessSession, result: dict, now: datetime | None = None) -> bool:
    """Stores a failed attempt; locks enrolling for 30 minutes after 5 failures in 3 minutes.
    Returns True when the account got locked."""
    now = now or utcnow()
    ls.passed = False
    ls.result = result
    enr = session.get(Enrollment, ls.enrollment_id)
    enr.failed_attempts += 1
    recent = session.scalar(sa.select(sa.func.count(LivenessSession.id)).join(Enrollment)
                            .where(Enrollment.user_id == user.id, LivenessSession.passed.is_(False),
                                   LivenessSession.used_at >= now - FAILURE_WINDOW))
    if recent >= MAX_FAILURES:
        user.enroll_locked_until = now + LOCKOUT
        session.flush()
        return True
    session.flush()
    return False


def flag_generated_media(enr: Enrollment) -> None:
    """An upload of this enrollment carried one of our outputs: reviewers see the flag (and, in the
    attempt's report, the generation it points to) whatever later attempts show."""
    enr.flags = sorted(set(enr.flags or []) | {"generated_media"})


def record_pass(session: Session, media: MediaStore, user: User, ls: LivenessSession, result: dict,
                face_template: np.ndarray, reference_png: bytes, voice_template: np.ndarray | None,
                voiced_wav: bytes | None, voiced_seconds: float, footage: bytes | None = None,
                voice_analysis: bytes | None = None) -> Enrollment:
    """Creates the face and voice profiles from this capture (replacing earlier ones of the same
    enrollment) and moves the enrollment to captured. footage: the statement's part of the capture
    (MP4), kept encrypted with the face profile for the talking head; voice_analysis: the offline
    voice's analysis of voiced_wav (synthesis/speech/voice_analysis.py), kept with the voice profile."""
    ls.passed = True
    ls.result = result
    enr = session.get(Enrollment, ls.enrollment_id)
    for model in (FaceProfile, VoiceProfile):
        old = session.scalar(sa.select(model).where(model.enrollment_id == enr.id))
        if old is not None:
            session.delete(old)
    session.flush()
    ft = save_template(session, media, user.id, "face_template", face_template)
    ref = media.put(session, user.id, "face_ref", reference_png, "image/png")
    clip = media.put(session, user.id, "face_footage", footage, "video/mp4") if footage else None
    session.add(FaceProfile(enrollment_id=enr.id, user_id=user.id, template_media_id=ft.id, reference_media_id=ref.id,
                            footage_media_id=clip.id if clip else None, model="dlib-resnet-128",
                            quality=result.get("checks", {}).get("presentation_attack", {})))
    if voice_template is not None and voiced_wav:
        vt = save_template(session, media, user.id, "voice_template", voice_template)
        vref = media.put(session, user.id, "voice_ref", voiced_wav, "audio/wav")
        session.add(VoiceProfile(enrollment_id=enr.id, user_id=user.id, template_media_id=vt.id,
                                 reference_media_id=vref.id, model="resemblyzer-partials-256",
                                 voiced_seconds=round(voiced_seconds, 2),
                                 analysis_media_id=_put_analysis(media, session, user.id, voice_analysis)))
    enr.scores = {k: v for k, v in result.get("checks", {}).items()}
    from avatar.analysis.challenge import borderline_checks  # heavy (ML) imports: only in the job

    borderline = borderline_checks(result.get("checks", {}))
    enr.scores["borderline"] = borderline
    flags = set(enr.flags or []) - {"borderline_scores"}
    if enr.failed_attempts:
        flags.add("failures_before_pass")
    if borderline:
        flags.add("borderline_scores")
    enr.flags = sorted(flags)
    if enr.state != S.CAPTURED.value:
        transition(enr, S.CAPTURED)
    session.flush()
    return enr


def consent_text(user: User, service: str, scopes: list[str], purposes: list[str], expires: datetime) -> str:
    return (f"I, {user.full_name}, consent to {service} using my {' and '.join(scopes)} likeness, taken from my "
            f"live enrollment, to make synthetic media for: {', '.join(purposes)}. This consent ends on "
            f"{expires:%Y-%m-%d} unless I withdraw it earlier, which I can do at any time. "
            f"Every output will be labeled as AI-generated. (text version {CONSENT_TEXT_VERSION})")


def give_consent(session: Session, user: User, service: str, scopes: list[str], purposes: list[str],
                 days: int, ip: str | None, user_agent: str | None, now: datetime | None = None, *,
                 by: Actor) -> Consent:
    """Records granular consent for the captured likeness and moves the enrollment to consented
    (audited, with the text's hash)."""
    now = now or utcnow()
    enr = current_enrollment(session, user.id)
    if enr is None or enr.state != S.CAPTURED.value:
        raise Conflict("Complete the live capture first.")
    scopes = sorted(set(scopes))
    if not scopes or not set(scopes) <= {"face", "voice"}:
        raise DomainError("Choose at least one of face and voice.")
    if "voice" in scopes:
        vp = enr.voice_profile
        if vp is None or vp.voiced_seconds < MIN_VOICE_SECONDS:
            raise DomainError(f"Your voice needs at least {MIN_VOICE_SECONDS:.0f} s of speech: read the paragraph too.")
    purposes = sorted(set(purposes))
    if not purposes or not set(purposes) <= set(PURPOSES):
        raise DomainError(f"Choose purposes among {', '.join(PURPOSES)}.")
    if not 1 <= days <= 3 * 365:
        raise DomainError("Consent lasts between 1 day and 3 years.")
    expires = now + timedelta(days=days)
    text = consent_text(user, service, scopes, purposes, expires)
    consent = Consent(enrollment_id=enr.id, user_id=user.id, scopes=scopes, purposes=purposes,
                      text_version=CONSENT_TEXT_VERSION, text=text, text_sha256=hashlib.sha256(text.encode()).hexdigest(),
                      granted_at=now, expires_at=expires, ip=ip, user_agent=(user_agent or "")[:400])
    session.add(consent)
    transition(enr, S.CONSENTED)
    session.flush()
    audit(session, by, "enrollment.consented", target_type="consent", target_id=consent.id,
          details={"scopes": scopes, "purposes": purposes, "expires_at": expires.isoformat(),
                   "text_sha256": consent.text_sha256, **_witness(user, by)})
    return consent


def submit(session: Session, user: User, guard_result: dict, *, by: Actor) -> Enrollment:
    """Sends the consented enrollment to review (audited); a guard match is flagged for the
    reviewer and blocks it (it stays submitted, flagged, and cannot be approved without a decision)."""
    enr = current_enrollment(session, user.id)
    if enr is None or enr.state != S.CONSENTED.value:
        raise Conflict("Give consent first.")
    enr.guard = guard_result
    if guard_result.get("blocked"):
        enr.flags = sorted(set(enr.flags or []) | {"guard_match"})
    transition(enr, S.SUBMITTED)
    enr.submitted_at = utcnow()
    session.flush()
    audit(session, by, "enrollment.submitted", target_type="enrollment", target_id=enr.id,
          details={"guard_blocked": bool(guard_result.get("blocked"))})
    return enr


def consent_and_submit(session: Session, media: MediaStore, user: User, service: str, scopes: list[str],
                       purposes: list[str], days: int, ip: str | None, user_agent: str | None,
                       guard_backend: str = "numpy", *, by: Actor) -> dict:
    """The consent page's use case, in the caller's transaction: consent on the exact text
    (give_consent), the likeness guard's screen of the consented templates against every other
    enrolled and protected person, then submission for review (submit). Returns the guard's result."""
    from avatar.domain.guard import screen
    from avatar.store.templates import load_template

    consent = give_consent(session, user, service, scopes, purposes, days, ip, user_agent, by=by)
    enr = current_enrollment(session, user.id)
    face, voice = enr.face_profile, enr.voice_profile
    result = screen(session, media, user.id,
                    load_template(session, media, face.template_media_id) if "face" in consent.scopes else None,
                    load_template(session, media, voice.template_media_id) if "voice" in consent.scopes and voice
                    else None, backend=guard_backend)
    submit(session, user, result, by=by)
    return result


def png_bytes(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DomainError("could not encode the reference image")
    return buf.tobytes()




