"""The on-camera reading: after the live capture, the person reads a text chosen for its sounds, on
camera. It gives the talking head the person's mouth on every kind of sound, and the voice more of
their speech. It is checked against the likeness the capture made: the same face, the same voice,
lips moving with the speech, a live face (not a flat picture or a screen), spoken (not generated,
not pieced together), and long enough."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

# lips moving with the speech: the statement's threshold (calibrated on talking/ and on 12 s
# readings), which a longer reading only makes steadier
from avatar.analysis.challenge import AV_SYNC_MIN, lips_failure
from avatar.analysis.challenge import HINTS as CAPTURE_HINTS  # the same advice for late sound
from avatar.analysis.face import FACE_MATCH_THRESHOLD, face_distance, face_embedding
from avatar.analysis.liveness import (
    HUMAN_FACE_MIN,
    MIN_PRESENT,
    PLANAR_RESIDUAL_MIN,
    SCREEN_PATTERN_MAX,
    frontal_frames,
    human_face_score,
    identity_and_planarity,
    lip_sync,
    mouth_track,
    screen_pattern,
    spread,
    track,
)
from avatar.analysis.media import Frames
from avatar.analysis.voice import (
    REPEATED_SOUND_MAX,
    SPEAKER_MATCH_THRESHOLD,
    VoiceError,
    repeated_sound,
    speaker_similarity,
    speaker_template,
    voice_activity,
    voiced_audio,
)

SR = 16000
# Speech the reading must hold (voice activity, seconds): the text takes 35-45 s to read aloud
MIN_SPEECH_SECONDS = 30.0
SYNC_SECONDS = 20.0  # lips are checked against the speech over this much of it, from its start
FACE_SAMPLES = 7  # frontal frames spread over the reading compared with the enrolled face
MAX_YAW = 35.0  # degrees: beyond this a face is not compared (GRID s1 reads at about 25)

# What the person reads: every English viseme, many times (bilabials m/b/p, labiodentals f/v,
# rounded o/u/w, open vowels, th, sh/ch/j, l/r), in plain sentences. About 100 words.
TEXT = ("I am making this recording myself, because I choose to. I read these words slowly and clearly, "
        "facing the camera, so that my own face and voice can be measured. "
        "A bright blue boat moved past the big pier, while five brave women waved from the shore. "
        "Would you throw the yellow rope over the wooden fence, and push the heavy box through the gate? "
        "Each autumn my father and mother visit the old farm beyond the hills, "
        "where sheep, cows and a few sleepy ponies graze by the edge of the water. "
        "Thank you. That is the end of my reading.")

HINTS = {
    "face": "Keep your face in the picture, in good light, looking at the camera while you read.",
    "same_face": "This reading does not show the face of your live capture.",
    "voice": "Read the text aloud yourself, in your own voice, facing the camera.",
    "same_voice": "This reading does not sound like the voice of your live capture.",
    "length": "Read the whole text aloud, at an easy pace; the recording stops by itself.",
    "submitted": "Your enrollment was submitted before this reading was checked; it was not added.",
    "sound_late": CAPTURE_HINTS["sound_late"],
}
HINT_PRIORITY = ["face", "same_face", "length", "voice", "same_voice", "sound_late"]


@dataclass
class ReadingVerdict:
    passed: bool
    hint: str | None
    failures: list[str]
    checks: dict
    voiced: np.ndarray | None = field(default=None, repr=False)  # the speech, for the voice profile

    def report(self) -> dict:
        return {"passed": self.passed, "failures": self.failures, "checks": self.checks}


def verify_reading(frames: Frames, audio: np.ndarray | None, sync_frames: Iterable[tuple[float, np.ndarray]],
                   face_template: np.ndarray, voice_template: np.ndarray | None) -> ReadingVerdict:
    """The reading (frames at liveness.SAMPLE_FPS, its 16 kHz audio; sync_frames: (time, RGB) at
    SYNC_FPS, read lazily) against the enrolled face and voice templates."""
    sig = track(frames)
    checks: dict = {}
    failures: list[str] = []
    keys: list[str] = []

    def fail(key: str, why: str) -> None:
        failures.append(why)
        keys.append(key)

    present = sig.present_ratio
    multi = float(np.mean(sig.faces_in_frame[sig.present] > 1)) if sig.present.any() else 0.0
    checks["face"] = {"ok": present >= MIN_PRESENT and multi <= 0.1, "present": round(present, 3),
                      "multiple_faces": round(multi, 3)}
    if not checks["face"]["ok"]:
        fail("face", f"face visible in {100 * present:.0f}% of the reading, more than one face in {100 * multi:.0f}%")
    # frontal frames where there are any; else the least turned (a camera set to one side)
    front = frontal_frames(sig) or [i for i in np.flatnonzero(sig.present) if abs(sig.yaw[i]) < MAX_YAW]
    if front:
        picks = sorted(spread(front, FACE_SAMPLES))
        dists = [face_distance(face_template, face_embedding(frames.images[i], sig.observations[i])) for i in picks]
        checks["same_face"] = {"ok": max(dists) < FACE_MATCH_THRESHOLD, "max_distance": round(max(dists), 3),
                               "median_distance": round(float(np.median(dists)), 3)}
        if not checks["same_face"]["ok"]:
            fail("same_face", f"a face {max(dists):.2f} from the enrolled one (same person: under {FACE_MATCH_THRESHOLD})")
        ident, planar = identity_and_planarity(frames, sig)
        if ident["max_distance"] is None:  # no frontal frame: the samples above, each the enrolled face, decide
            ident["ok"] = checks["same_face"]["ok"]
        human = float(np.median([human_face_score(frames.images[i], sig.observations[i]) for i in picks]))
        pattern = screen_pattern(frames, sig)
        checks["presentation_attack"] = {
            "ok": bool(ident["ok"]) and planar is not None and planar >= PLANAR_RESIDUAL_MIN and human >= HUMAN_FACE_MIN
            and (pattern is None or pattern <= SCREEN_PATTERN_MAX),
            "one_face_throughout": bool(ident["ok"]), "planar_residual": None if planar is None else round(planar, 2),
            "human_face": round(human, 3), "screen_pattern": None if pattern is None else round(pattern, 2)}
        if not checks["presentation_attack"]["ok"]:
            fail("face", "the face is not one live face throughout (a flat picture, a screen or a change of person)")
    else:
        fail("face", "no face turned toward the camera in the reading")

    voiced = None
    if audio is None or audio.size == 0:
        fail("voice", "the reading has no sound")
        return _verdict(failures, keys, checks, None)
    segments = voice_activity(audio)
    speech = float(sum(b - a for a, b in segments))
    checks["length"] = {"ok": speech >= MIN_SPEECH_SECONDS, "speech_seconds": round(speech, 1),
                        "needed": MIN_SPEECH_SECONDS}
    if not checks["length"]["ok"]:
        fail("length", f"{speech:.0f} s of speech; the text needs at least {MIN_SPEECH_SECONDS:.0f} s")
    checks["voice"] = {}
    if segments:
        voiced = voiced_audio(audio, segments)
        try:
            sim = speaker_similarity(voice_template, speaker_template(voiced)) if voice_template is not None else None
        except VoiceError as exc:
            sim, checks["voice"]["error"] = None, str(exc)
        checks["voice"]["speaker_similarity"] = None if sim is None else round(float(sim), 3)
        if voice_template is not None and (sim is None or sim < SPEAKER_MATCH_THRESHOLD):
            fail("same_voice", "not the voice of the live capture")
        start = segments[0][0]
        mouth = mouth_track(sync_frames, sig, max(0.0, start - 0.5), start + SYNC_SECONDS)
        sync = lip_sync(mouth, audio, SR) if mouth is not None else {"corr": 0.0, "lag": 0.0}
        checks["voice"]["av_sync"] = sync
        if sync["corr"] < AV_SYNC_MIN:
            fail(*lips_failure(mouth, audio, sync))
        repeated = round(repeated_sound(audio), 3)
        checks["voice"]["repeated_sound"] = repeated
        if repeated > REPEATED_SOUND_MAX:
            fail("voice", "the same recorded sound occurs twice: speech pieced together from recordings")
    else:
        fail("length", "no speech heard")
    checks["voice"]["ok"] = not any(k in ("voice", "same_voice", "sound_late") for k in keys)
    return _verdict(failures, keys, checks, voiced)


def _verdict(failures: list[str], keys: list[str], checks: dict, voiced: np.ndarray | None) -> ReadingVerdict:
    hint = HINTS[min(keys, key=HINT_PRIORITY.index)] if keys else None
    return ReadingVerdict(not failures, hint, failures, checks, voiced)
