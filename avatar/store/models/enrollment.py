from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from avatar.store.db import Base, utcnow


class EnrollmentState(str, enum.Enum):
    STARTED = "started"
    CAPTURED = "captured"
    CONSENTED = "consented"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"
    EXPIRED = "expired"


class Enrollment(Base):
    """One attempt of a person to have their likeness enrolled; transitions in domain/enrollment.py."""

    __tablename__ = "enrollments"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    state: so.Mapped[str] = so.mapped_column(sa.String(16), default=EnrollmentState.STARTED.value, index=True)
    # Admin who recorded the person on site (assisted enrollment), with the ID check attestation.
    assisted_by_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    id_document_type: so.Mapped[Optional[str]] = so.mapped_column(sa.String(32))
    id_document_last4: so.Mapped[Optional[str]] = so.mapped_column(sa.String(4))
    failed_attempts: so.Mapped[int] = so.mapped_column(default=0)
    flags: so.Mapped[list] = so.mapped_column(sa.JSON, default=list)
    guard: so.Mapped[Optional[dict]] = so.mapped_column(sa.JSON)  # likeness-guard result at submission
    scores: so.Mapped[dict] = so.mapped_column(sa.JSON, default=dict)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(default=utcnow, onupdate=utcnow)
    submitted_at: so.Mapped[Optional[datetime]]
    decided_at: so.Mapped[Optional[datetime]]
    revoked_at: so.Mapped[Optional[datetime]]
    # the likeness taken from this attempt's live capture (read here; written and deleted only by
    # domain/enrollment.py and the capture job, so the relationships are view-only)
    face_profile: so.Mapped[Optional[FaceProfile]] = so.relationship(viewonly=True)
    voice_profile: so.Mapped[Optional[VoiceProfile]] = so.relationship(viewonly=True)


class LivenessSession(Base):
    """A server-issued challenge: ordered actions, a code to say, a statement to read. Single use."""

    __tablename__ = "liveness_sessions"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    enrollment_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("enrollments.id", ondelete="CASCADE"), index=True)
    nonce: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    actions: so.Mapped[list] = so.mapped_column(sa.JSON)  # e.g. ["turn_left", "blink_twice", "smile"]
    plan: so.Mapped[dict] = so.mapped_column(sa.JSON, default=dict)  # prompt windows (domain.challenges.schedule)
    code: so.Mapped[str] = so.mapped_column(sa.String(12))
    statement: so.Mapped[str] = so.mapped_column(sa.Text)
    issued_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    expires_at: so.Mapped[datetime]
    used_at: so.Mapped[Optional[datetime]]
    passed: so.Mapped[Optional[bool]]
    result: so.Mapped[Optional[dict]] = so.mapped_column(sa.JSON)
    recording_media_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("media_objects.id", ondelete="SET NULL"))
    job_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("jobs.id", ondelete="SET NULL"))
    uploaded_at: so.Mapped[Optional[datetime]]
    # when the page showed each prompt, seconds into the recording (domain.challenges.prompt_times)
    prompt_times: so.Mapped[Optional[list]] = so.mapped_column(sa.JSON)


class Consent(Base):
    """Granular, revocable consent: which modalities, for which purposes, until when, to which text."""

    __tablename__ = "consents"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    enrollment_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("enrollments.id", ondelete="CASCADE"), index=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scopes: so.Mapped[list] = so.mapped_column(sa.JSON)  # subset of ["face", "voice"]
    purposes: so.Mapped[list] = so.mapped_column(sa.JSON)
    text_version: so.Mapped[str] = so.mapped_column(sa.String(32))
    text_sha256: so.Mapped[str] = so.mapped_column(sa.String(64))
    text: so.Mapped[str] = so.mapped_column(sa.Text)
    granted_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    expires_at: so.Mapped[datetime]
    ip: so.Mapped[Optional[str]] = so.mapped_column(sa.String(64))
    user_agent: so.Mapped[Optional[str]] = so.mapped_column(sa.String(400))
    revoked_at: so.Mapped[Optional[datetime]]


class _ProfileColumns:
    """What face and voice profiles share: the enrollment they came from, an encrypted template
    and an encrypted reference medium (both MediaObjects of the subject), the model that made it."""

    enrollment_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("enrollments.id", ondelete="CASCADE"), unique=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    template_media_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("media_objects.id"))
    reference_media_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("media_objects.id"))
    model: so.Mapped[str] = so.mapped_column(sa.String(64))
    quality: so.Mapped[dict] = so.mapped_column(sa.JSON, default=dict)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)


class FaceProfile(_ProfileColumns, Base):
    """Face likeness taken from a passed live capture: dlib template, aligned reference image and
    the footage of the person reading the statement (MP4 with its audio), which the talking head
    is made from; profiles from before footage was kept have none."""

    __tablename__ = "face_profiles"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    footage_media_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("media_objects.id"))


class VoiceProfile(_ProfileColumns, Base):
    """Voice likeness from the same capture: speaker template, voiced reference audio and the offline
    voice's analysis of that audio (synthesis/speech/voice_analysis.py; none on profiles from before
    it was stored, or when it could not be made: the voice is then analysed at its use)."""

    __tablename__ = "voice_profiles"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    voiced_seconds: so.Mapped[float]
    analysis_media_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("media_objects.id"))


class Review(Base):
    __tablename__ = "reviews"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    enrollment_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("enrollments.id", ondelete="CASCADE"), index=True)
    reviewer_id: so.Mapped[Optional[int]] = so.mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    decision: so.Mapped[str] = so.mapped_column(sa.String(16))  # approve | reject | revoke
    reason: so.Mapped[str] = so.mapped_column(sa.Text)
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
