"""Likeness guard: 1:N search of a new face/voice template against every other enrolled person
and the protected-persons gallery. In-memory numpy by default; a faiss index for scale."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from avatar.analysis.face import FACE_MATCH_THRESHOLD
from avatar.analysis.voice import SPEAKER_MATCH_THRESHOLD, speaker_similarity, template_vector
from avatar.store.media import MediaShredded, MediaStore
from avatar.store.models import (
    Enrollment,
    EnrollmentState,
    FaceProfile,
    ProtectedPerson,
    ProtectedTemplate,
    User,
    VoiceProfile,
)
from avatar.store.templates import load_template

# enrollments whose likeness is "taken": anything that passed capture and was not rejected/revoked
LIVE_STATES = {EnrollmentState.CAPTURED.value, EnrollmentState.CONSENTED.value, EnrollmentState.SUBMITTED.value,
               EnrollmentState.APPROVED.value}
VOICE_PREFILTER = 0.6  # cosine of mean vectors; candidates are confirmed with the set similarity


@dataclass
class Entry:
    kind: str  # "user" or "protected"
    owner_id: int
    label: str
    template: np.ndarray
    reference_media_id: int | None = None


class Gallery:
    """Templates of one modality with a vector index over them."""

    def __init__(self, modality: str, entries: list[Entry], backend: str = "numpy"):
        self.modality, self.entries, self.backend = modality, entries, backend
        vecs = [self._vector(e.template) for e in entries]
        dim = 128 if modality == "face" else 256
        self.matrix = np.stack(vecs).astype(np.float32) if vecs else np.zeros((0, dim), np.float32)
        self._faiss = build_index(self.matrix, modality) if backend == "faiss" and len(vecs) else None

    def _vector(self, t: np.ndarray) -> np.ndarray:
        return np.asarray(t, np.float32) if self.modality == "face" else template_vector(t)

    def candidates(self, template: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
        """(index, score) of the nearest k: L2 distance for faces, cosine for voices."""
        if not len(self.entries):
            return []
        q = self._vector(template)[None, :]
        k = min(k, len(self.entries))
        if self._faiss is not None:
            scores, idx = self._faiss.search(q, k)
            scores = np.sqrt(np.maximum(scores, 0)) if self.modality == "face" else scores
            return [(int(i), float(s)) for i, s in zip(idx[0], scores[0]) if i >= 0]
        if self.modality == "face":
            d = np.linalg.norm(self.matrix - q, axis=1)
            order = np.argsort(d)[:k]
            return [(int(i), float(d[i])) for i in order]
        s = self.matrix @ q[0]
        order = np.argsort(-s)[:k]
        return [(int(i), float(s[i])) for i in order]

    def match(self, template: np.ndarray) -> dict | None:
        """The best entry that matches under the calibrated threshold, or None."""
        for i, score in self.candidates(template):
            e = self.entries[i]
            if self.modality == "face":
                if score < FACE_MATCH_THRESHOLD:
                    return _hit(e, distance=round(score, 4))
            elif score >= VOICE_PREFILTER:
                sim = speaker_similarity(template, e.template)
                if sim >= SPEAKER_MATCH_THRESHOLD:
                    return _hit(e, similarity=round(sim, 4))
        return None


APPROXIMATE_FROM = 100_000  # below this an exact (flat) index is fast enough
NPROBE = 48


def build_index(matrix: np.ndarray, modality: str):
    """A faiss index over the rows: exact below APPROXIMATE_FROM, else an inverted file (about
    4·√n lists, NPROBE of them searched); L2 for faces, inner product (cosine) for voices.
    bench/bench_guard_scale.py measures its recall against brute force at 1,000,000 templates."""
    import faiss

    n, dim = matrix.shape
    metric = faiss.METRIC_L2 if modality == "face" else faiss.METRIC_INNER_PRODUCT
    flat = faiss.IndexFlatL2(dim) if metric == faiss.METRIC_L2 else faiss.IndexFlatIP(dim)
    if n < APPROXIMATE_FROM:
        flat.add(matrix)
        return flat
    index = faiss.IndexIVFFlat(flat, dim, int(4 * np.sqrt(n)), metric)
    rng = np.random.default_rng(0)
    index.train(matrix[rng.choice(n, min(n, 256 * index.nlist), replace=False)])
    index.add(matrix)
    index.nprobe = NPROBE
    return index


def _hit(e: Entry, **score) -> dict:
    return {"kind": e.kind, "owner_id": e.owner_id, "label": e.label, "reference_media_id": e.reference_media_id, **score}


def load_gallery(session: Session, media: MediaStore, modality: str, exclude_user: int | None,
                 backend: str = "numpy") -> Gallery:
    """Every enrolled profile of other users (in a live state) and every protected template."""
    profile = FaceProfile if modality == "face" else VoiceProfile
    rows = session.execute(
        sa.select(profile, User.full_name).join(Enrollment, Enrollment.id == profile.enrollment_id)
        .join(User, User.id == profile.user_id)
        .where(Enrollment.state.in_(LIVE_STATES), profile.user_id != (exclude_user or -1))
    ).all()
    entries = []
    for prof, name in rows:
        try:
            entries.append(Entry("user", prof.user_id, name, load_template(session, media, prof.template_media_id),
                                 prof.reference_media_id))
        except MediaShredded:
            continue
    prot = session.execute(sa.select(ProtectedTemplate, ProtectedPerson.name)
                           .join(ProtectedPerson, ProtectedPerson.id == ProtectedTemplate.person_id)
                           .where(ProtectedTemplate.modality == modality)).all()
    for t, name in prot:
        entries.append(Entry("protected", t.person_id, name, load_template(session, media, t.template_media_id),
                             t.reference_media_id))
    return Gallery(modality, entries, backend)


def screen(session: Session, media: MediaStore, user_id: int | None, face: np.ndarray | None,
           voice: np.ndarray | None, backend: str = "numpy") -> dict:
    """{"blocked": bool, "face": match|None, "voice": match|None} for new templates of user_id."""
    out = {"face": None, "voice": None}
    if face is not None:
        out["face"] = load_gallery(session, media, "face", user_id, backend).match(face)
    if voice is not None:
        out["voice"] = load_gallery(session, media, "voice", user_id, backend).match(voice)
    out["blocked"] = bool(out["face"] or out["voice"])
    return out



