"""Biometric templates as encrypted media: numpy arrays serialized with np.save (no pickle)."""
from __future__ import annotations

import io

import numpy as np
from sqlalchemy.orm import Session

from avatar.store.media import MediaStore
from avatar.store.models import MediaObject

CONTENT_TYPE = "application/x-npy"


def save_template(session: Session, media: MediaStore, subject_id: int, kind: str, template: np.ndarray) -> MediaObject:
    buf = io.BytesIO()
    np.save(buf, np.asarray(template, dtype=np.float32), allow_pickle=False)
    return media.put(session, subject_id, kind, buf.getvalue(), CONTENT_TYPE)


def load_template(session: Session, media: MediaStore, media_id: int) -> np.ndarray:
    obj = session.get(MediaObject, media_id)
    if obj is None:
        raise LookupError(f"template {media_id} not found")
    return np.load(io.BytesIO(media.get(session, obj)), allow_pickle=False)
