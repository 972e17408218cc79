"""An approved likeness built directly in the database from ../shared/data (a real photo and a real
speaker), for tests and benchmarks of the gate, of generation and of what follows it; enrollment
itself is tested elsewhere. Never used by the app."""
from __future__ import annotations

from datetime import timedelta

import numpy as np

from avatar.domain.accounts import register
from avatar.domain.enrollment import png_bytes, wav_bytes
from avatar.store.db import utcnow
from avatar.store.models import Consent, Enrollment, FaceProfile, VoiceProfile
from avatar.store.templates import save_template

PASSWORD = "Correct-horse-42-battery"  # noqa: S105 - the test accounts' password
_CACHE: dict = {}


def references(shared_data):
    """(aligned face, face template, 16 kHz speech, speaker template) of the people used here."""
    if "refs" not in _CACHE:
        from avatar.analysis.face import aligned_face, face_embedding, observe_image
        from avatar.analysis.media import decode_audio, decode_image
        from avatar.analysis.voice import speaker_template

        img = decode_image((shared_data / "faces/img1.jpg").read_bytes())
        obs = observe_image(img)
        voices = sorted((shared_data / "voices/1688").glob("*.flac"))
        voice = np.concatenate([decode_audio(f.read_bytes()) for f in voices[:3]])
        _CACHE["refs"] = (aligned_face(img, obs), face_embedding(img, obs), voice, speaker_template(voice))
    return _CACHE["refs"]


def approved_likeness(services, shared_data, email="subject@example.org", scopes=("face", "voice"),
                      purposes=("personal",), days=30, password=PASSWORD, footage: bytes | None = None) -> int:
    """A new account (email, password) with an approved likeness and its consent; its id.
    footage: an MP4 kept as the face profile's footage (the talking head's source)."""
    face, face_t, voice, voice_t = references(shared_data)
    with services.db.session_scope() as s:
        user = register(s, email, "Sub Ject", password)
        enr = Enrollment(user_id=user.id, state="approved", submitted_at=utcnow(), decided_at=utcnow())
        s.add(enr)
        s.flush()
        m = services.media
        clip = m.put(s, user.id, "face_footage", footage, "video/mp4").id if footage else None
        s.add(FaceProfile(enrollment_id=enr.id, user_id=user.id, model="dlib-resnet-128", quality={},
                          footage_media_id=clip,
                          template_media_id=save_template(s, m, user.id, "face_template", face_t).id,
                          reference_media_id=m.put(s, user.id, "face_ref", png_bytes(face), "image/png").id))
        s.add(VoiceProfile(enrollment_id=enr.id, user_id=user.id, model="resemblyzer-partials-256",
                           voiced_seconds=len(voice) / 16000,
                           template_media_id=save_template(s, m, user.id, "voice_template", voice_t).id,
                           reference_media_id=m.put(s, user.id, "voice_ref", wav_bytes(voice), "audio/wav").id))
        s.add(Consent(enrollment_id=enr.id, user_id=user.id, scopes=list(scopes), purposes=list(purposes),
                      text_version="test", text_sha256="0" * 64, text="test consent", granted_at=utcnow(),
                      expires_at=utcnow() + timedelta(days=days)))
        return user.id
