"""Whole-file checks built from the analysis functions (used by the CLI, enrollment and guard)."""
from __future__ import annotations

import numpy as np

from avatar.analysis.face import (
    FaceError,
    FaceObservation,
    aligned_face,
    face_embedding,
    observe_image,
    require_single_face,
)
from avatar.analysis.liveness import HUMAN_FACE_MIN, SAMPLE_FPS, PassiveResult, human_face_score, passive_liveness
from avatar.analysis.media import Limits, MediaFile, decode_image


def _checked(rgb) -> tuple[dict, FaceObservation | None]:
    """face_check()'s answer and the observation it was made from."""
    obs = observe_image(rgb)
    faces = obs.faces_in_frame if obs else 0
    try:
        require_single_face(obs)
    except FaceError as exc:
        return {"ok": False, "faces": faces, "reason": str(exc)}, obs
    human = human_face_score(rgb, obs)
    if human < HUMAN_FACE_MIN:
        return {"ok": False, "faces": faces, "reason": "the face does not look like a human face",
                "human_face": round(human, 3)}, obs
    return {"ok": True, "faces": faces, "reason": None, "size": obs.size, "sharpness": round(obs.sharpness, 1),
            "yaw": round(obs.yaw, 1), "pitch": round(obs.pitch, 1), "human_face": round(human, 3)}, obs


def face_check(rgb) -> dict:
    """Is there exactly one usable, human face in the image? {"ok", "faces", "reason", …}."""
    return _checked(rgb)[0]


def reference_face(rgb) -> tuple[np.ndarray, np.ndarray]:
    """(dlib template, aligned 256-px face image) of the one usable human face in a reference
    photo; FaceError with face_check()'s reason otherwise."""
    result, obs = _checked(rgb)
    if not result["ok"]:
        raise FaceError(result["reason"])
    return face_embedding(rgb, obs), aligned_face(rgb, obs)


def face_check_bytes(data: bytes) -> dict:
    return face_check(decode_image(data))


def passive_check_bytes(data: bytes, limits: Limits | None = None) -> PassiveResult:
    """Passive liveness of an uploaded file. A still image is never live."""
    with MediaFile(data, limits or Limits()) as mf:
        if mf.probe.is_image or (mf.probe.has_video and mf.probe.duration < 0.2):
            return PassiveResult(False, 0.0, ["a still image cannot show that a person is live"], [],
                                 {"still_image": True})
        frames, audio = mf.clip(SAMPLE_FPS, max_side=512)
    return passive_liveness(frames, audio)


SPEECH_READ_SECONDS = 60.0


def speech_check(audio: np.ndarray, mark: dict | None = None) -> dict:
    """Is the speech (16 kHz mono) generated? {"synthetic", "flagged", "score", "watermark", "reasons", …}.
    `mark` is what this installation's audio watermark detector found in the same audio
    ({"found", "watermark_id", "confidence"}; None when it was not looked for): where found it is
    decisive; otherwise the synthetic-speech score decides (synthetic_speech.REFUSE_AT) or flags
    (FLAG_AT). Too little speech to score is a reason, not an error."""
    from avatar.analysis.synthetic_speech import SyntheticSpeechError, speech_origin

    reasons = []
    try:
        origin = speech_origin(audio)
        out = origin.as_dict()
        reasons += origin.reasons()
    except SyntheticSpeechError as exc:
        out = {"synthetic": False, "flagged": False, "score": None, "max_window": None, "windows": 0}
        reasons.append(str(exc))
    if mark and mark["found"]:
        out["synthetic"], out["flagged"] = True, False
        reasons.insert(0, f"it carries this installation's audio watermark {mark['watermark_id']}: made here")
    return {**out, "watermark": mark, "reasons": reasons}


def speech_of_bytes(data: bytes) -> np.ndarray:
    """The first SPEECH_READ_SECONDS of an uploaded file's sound, 16 kHz mono, for speech_check()."""
    with MediaFile(data, Limits(max_seconds=3600.0, max_pixels=3840 * 2160)) as mf:
        return mf.audio(seconds=SPEECH_READ_SECONDS)
