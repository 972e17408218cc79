"""The consent gate: the only producer of consent grants.

A grant for (requester, subject, modality, purpose) is issued only when the subject's enrollment
is approved, their consent covers the modality and purpose and has neither expired nor been
revoked, the requester is the subject or holds the subject's active delegation, and the requester
authenticated within the last 15 minutes. The grant re-runs the same checks (except the recent
log-in) each time a backend uses it, so revocation stops synthesis at its next step."""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import sqlalchemy as sa

from avatar.domain import DomainError, Forbidden
from avatar.domain.challenges import PURPOSES_LABELS
from avatar.domain.enrollment import current_enrollment
from avatar.store.db import utcnow
from avatar.store.models import (
    Consent,
    Delegation,
    Enrollment,
    MediaObject,
    User,
)
from avatar.store.models import (
    EnrollmentState as S,
)
from avatar.synthesis.grant import _MINT, ConsentGrant, GrantError, Likeness

MODALITY_SCOPES = {"speech": ("voice",), "video": ("face", "voice")}
RECENT_AUTH = timedelta(minutes=15)


class GateRefused(Forbidden):
    """The gate refused; the message says which condition failed."""


class ReauthRequired(DomainError):
    """The requester must log in again before generating."""

    status = 401


def _refuse(why: str):
    raise GateRefused(why)


def check(session, requester_id: int, subject_id: int, modality: str, purpose: str,
          now: datetime | None = None) -> tuple[Enrollment, Consent, Delegation | None]:
    """Every condition except recent authentication; raises GateRefused naming the first that fails."""
    now = now or utcnow()
    if not 0 < subject_id < 2 ** 63:
        _refuse("No such person.")
    if modality not in MODALITY_SCOPES:
        _refuse(f"Unknown modality {modality!r}: choose speech or video.")
    if purpose not in PURPOSES_LABELS:
        _refuse(f"Unknown purpose {purpose!r}.")
    requester = session.get(User, requester_id)
    if requester is None or not requester.is_active:
        _refuse("The requesting account is not active.")
    delegation = None
    if requester_id != subject_id:
        delegation = session.scalar(sa.select(Delegation).where(
            Delegation.subject_id == subject_id, Delegation.delegate_id == requester_id,
            Delegation.revoked_at.is_(None)).order_by(Delegation.id.desc()).limit(1))
        if delegation is None or (delegation.expires_at is not None and delegation.expires_at < now):
            _refuse("Only the person themselves, or someone they delegated to, can use their likeness.")
        if modality not in delegation.modalities or purpose not in delegation.purposes:
            _refuse(f"The delegation does not cover {modality} for {purpose} use.")
    enr = current_enrollment(session, subject_id)
    if enr is None or enr.state != S.APPROVED.value:
        _refuse("This likeness is not approved" + (f" (enrollment {enr.state})." if enr else " (no enrollment)."))
    consent = session.scalars(sa.select(Consent).where(Consent.enrollment_id == enr.id)
                              .order_by(Consent.id.desc()).limit(1)).first()
    if consent is None or consent.revoked_at is not None:
        _refuse("Consent was withdrawn.")
    if consent.expires_at < now:
        _refuse("Consent has expired.")
    missing = [s for s in MODALITY_SCOPES[modality] if s not in consent.scopes]
    if missing:
        _refuse(f"Consent does not cover the {' and '.join(missing)} needed for {modality}.")
    if purpose not in consent.purposes:
        _refuse(f"Consent does not cover {PURPOSES_LABELS[purpose].lower()} ({purpose}).")
    return enr, consent, delegation


class ConsentGate:
    """Issues grants. `db` is the app's Database, `media` its MediaStore: a grant outlives the
    request that made it (it is re-created in the job), so it checks with sessions of its own."""

    def __init__(self, db, media):
        self.db, self.media = db, media

    def grant(self, requester_id: int, subject_id: int, modality: str, purpose: str,
              authenticated_at: datetime | None, now: datetime | None = None) -> ConsentGrant:
        now = now or utcnow()
        if authenticated_at is None or now - authenticated_at > RECENT_AUTH:
            raise ReauthRequired("Log in again to generate: your last log-in is more than 15 minutes old.")
        return self._mint(requester_id, subject_id, modality, purpose, now)

    def regrant(self, requester_id: int, subject_id: int, modality: str, purpose: str) -> ConsentGrant:
        """For a job that starts later: the same checks, without the recent log-in (the request
        that queued the job passed it)."""
        return self._mint(requester_id, subject_id, modality, purpose, utcnow())

    def _mint(self, requester_id, subject_id, modality, purpose, now) -> ConsentGrant:
        with self.db.session_scope() as s:
            _, consent, _ = check(s, requester_id, subject_id, modality, purpose, now)
            pseudonym = s.get(User, subject_id).pseudonym
            consent_id = consent.id

        def recheck() -> None:
            try:
                with self.db.session_scope() as s:
                    _, c, _ = check(s, requester_id, subject_id, modality, purpose)
                    if c.id != consent_id:
                        raise GateRefused("Consent was replaced; ask again.")
            except GateRefused as exc:
                raise GrantError(str(exc)) from exc

        return ConsentGrant(_MINT, requester_id=requester_id, subject_id=subject_id, subject_pseudonym=pseudonym,
                            consent_id=consent_id, modality=modality, purpose=purpose, issued_at=now,
                            check=recheck, load=lambda m: self._likeness(subject_id, m))

    def _likeness(self, subject_id: int, modality: str) -> Likeness:
        from avatar.analysis.media import decode_audio, decode_image

        with self.db.session_scope() as s:
            enr = current_enrollment(s, subject_id)
            face = footage = None
            vp = enr.voice_profile
            if vp is None:
                raise GrantError("No enrolled voice.")
            voice = decode_audio(self.media.get(s, s.get(MediaObject, vp.reference_media_id)))
            analysis = (self.media.get(s, s.get(MediaObject, vp.analysis_media_id))
                        if vp.analysis_media_id is not None else None)
            if "face" in MODALITY_SCOPES[modality]:
                fp = enr.face_profile
                if fp is None:
                    raise GrantError("No enrolled face.")
                face = decode_image(self.media.get(s, s.get(MediaObject, fp.reference_media_id)))
                if modality == "video" and fp.footage_media_id is not None:
                    footage = self.media.get(s, s.get(MediaObject, fp.footage_media_id))
        return Likeness(voice=np.asarray(voice, np.float32), face=face, footage=footage, voice_analysis=analysis)
