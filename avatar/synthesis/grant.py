"""The consent grant: the only key to a person's enrolled face and voice.

Only the consent gate (avatar.domain.gate) can mint one: the constructor refuses any caller that
does not hold the gate's private mint. The grant carries no path or id a backend could use to
load media itself; it hands out the decrypted references through methods that first re-run the
gate's checks (`ensure_valid`), so a grant whose consent was revoked fails at its next use."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import numpy as np


class GrantError(Exception):
    """The grant no longer holds (consent revoked or expired, enrollment revoked), or a backend
    was handed something that is not a grant."""


_MINT = object()  # held by avatar.domain.gate; nothing else may construct a grant


@dataclass(frozen=True)
class Likeness:
    """What a backend may use, decrypted: the enrolled voice (16 kHz mono), the face reference
    (RGB) from the live capture, where enrolled footage of the person speaking on camera (MP4
    with its audio: the frontal speaking part of the capture), and where stored the offline voice's
    analysis of the enrolled voice (speech/voice_analysis.py: made at enrollment, not at each use)."""

    voice: np.ndarray | None
    face: np.ndarray | None
    footage: bytes | None = None
    voice_analysis: bytes | None = None


class ConsentGrant:
    __slots__ = ("grant_id", "requester_id", "subject_pseudonym", "consent_id", "modality", "purpose",
                 "issued_at", "_check", "_load", "_subject_id")

    def __init__(self, mint, *, requester_id: int, subject_id: int, subject_pseudonym: str, consent_id: int,
                 modality: str, purpose: str, issued_at: datetime, check: Callable[[], None],
                 load: Callable[[str], Likeness]):
        if mint is not _MINT:
            raise TypeError("Consent grants are issued only by the consent gate.")
        self.grant_id = uuid.uuid4().hex
        self.requester_id, self._subject_id = requester_id, subject_id
        self.subject_pseudonym, self.consent_id = subject_pseudonym, consent_id
        self.modality, self.purpose, self.issued_at = modality, purpose, issued_at
        self._check, self._load = check, load

    def __repr__(self) -> str:
        return f"<ConsentGrant {self.modality}/{self.purpose} for {self.subject_pseudonym}>"

    def ensure_valid(self) -> None:
        """Re-runs the gate's checks against the current records; raises GrantError if they fail."""
        self._check()

    def likeness(self) -> Likeness:
        """The decrypted references this grant's modality covers (checks first)."""
        self.ensure_valid()
        return self._load(self.modality)


def require_grant(grant) -> ConsentGrant:
    """What every backend entry point calls first: only a real, still valid grant passes."""
    if not isinstance(grant, ConsentGrant):
        raise GrantError(f"A consent grant is required, not {type(grant).__name__}.")
    grant.ensure_valid()
    return grant
