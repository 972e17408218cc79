"""The mouth opening a talking head shows, frame by frame, from the phones of its speech: lips shut
on m, b, p; nearly shut on f, v; wide on open vowels, less on close ones; the loudness only
modulates within that shape. A mouth driven by loudness alone opens on every sound and never
closes inside a word (lip/loudness correlation 0.88 against 0.39 for the real clip, lips shut on 2
of 16 bilabials: bench/bench_talking_head.py)."""
from __future__ import annotations

import numpy as np
from scipy.signal import resample_poly

from avatar.analysis.phones import BILABIAL, LABIODENTAL, Phone, is_vowel, phone_times

OPEN_VOWELS = {"a", "A", "A:", "aI", "aU", "V", "a#", "O", "O:", "0", "E", "3:", "A@", "e@", "aI@", "aI3"}
CLOSE_VOWELS = {"i", "i:", "I", "u:", "U", "I#", "i@", "U@", "@"}
LOUDNESS_SHARE = 0.35  # how much of the opening follows the loudness (the rest: the phone's shape)


def mouth_track(audio: np.ndarray, sr: int, fps: float, n_frames: int) -> np.ndarray:
    """Mouth opening 0–1 per frame from the speech loudness (dB above the quiet floor)."""
    hop = sr / fps
    out = np.zeros(n_frames, np.float32)
    for i in range(n_frames):
        seg = audio[int(i * hop): int((i + 1) * hop)]
        out[i] = 10 * np.log10(np.mean(seg.astype(np.float64) ** 2) + 1e-10) if seg.size else -100
    top = np.percentile(out, 95) if n_frames else 0
    m = np.clip((out - (top - 30)) / 24, 0, 1)
    m = np.convolve(m, [0.25, 0.5, 0.25], mode="same")
    return m.astype(np.float32) ** 0.8


def phone_opening(phone: str) -> float:
    """Target opening 0–1 of one phone."""
    if phone in BILABIAL:
        return 0.0
    if phone in LABIODENTAL:
        return 0.12
    if is_vowel(phone):
        return 1.0 if phone in OPEN_VOWELS else 0.45 if phone in CLOSE_VOWELS else 0.7
    return 0.3


def speech_phones(audio: np.ndarray, sr: int, text: str = "") -> list[Phone]:
    """Timed phones of speech, espeak-ng's phones over word timings: the known text's words aligned
    to the audio (word_alignment) where the text is given, else the words Whisper hears."""
    audio16 = resample_poly(audio, 16000, sr).astype(np.float32) if sr != 16000 else audio
    if text.strip():
        from avatar.analysis.word_alignment import aligned_words

        return phone_times(aligned_words(audio16, text))
    from avatar.analysis.speech_recognition import timed_words

    return phone_times(timed_words(audio16))


def shape_mouth(loudness: np.ndarray, phones: list[Phone], fps: float, loudness_share: float = LOUDNESS_SHARE) -> np.ndarray:
    """Per-frame opening 0–1: each phone's target (coarticulated over ±1 frame) scaled by the
    loudness track, with the lips shut on at least one frame of every bilabial."""
    n = len(loudness)
    target = np.zeros(n, np.float32)
    t = (np.arange(n) + 0.5) / fps
    for p in phones:
        target[(t >= p.start) & (t < p.end)] = phone_opening(p.phone)
    target = np.convolve(target, [0.25, 0.5, 0.25], mode="same")
    voiced = np.clip(loudness / max(float(loudness.max()), 1e-6), 0, 1)
    out = target * ((1 - loudness_share) + loudness_share * voiced)
    for p in phones:
        if p.phone in BILABIAL:
            mid = int(np.clip((p.start + p.end) / 2 * fps, 0, n - 1))
            out[mid] = 0.0
            for j in (mid - 1, mid + 1):
                if 0 <= j < n:
                    out[j] = min(out[j], 0.3)
    return np.clip(out, 0, 1).astype(np.float32)
