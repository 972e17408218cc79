"""Voice analysis on 16 kHz mono float32 arrays: voice activity (silero-vad), speaker template
(Resemblyzer 256-d), spoken digit codes (Whisper, analysis.speech_recognition), speech quality.
Models load once per process (get_voice_models(), speech_recognition.model())."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from avatar.analysis.speech_recognition import Hearing

SR = 16000
# cosine similarity of Resemblyzer templates; equal-error threshold on the shared speakers
# (`avatar eval voices`: EER 0.89 % at 0.70 over 15,225 pairs)
SPEAKER_MATCH_THRESHOLD = 0.70


class VoiceError(ValueError):
    """The audio is unusable for voice (silence, too short, clipped…); the message says why."""


class VoiceModels:
    def __init__(self):
        self.lock = threading.Lock()

    @cached_property
    def vad(self):
        from silero_vad import load_silero_vad

        return load_silero_vad()

    @cached_property
    def encoder(self):
        from resemblyzer import VoiceEncoder

        return VoiceEncoder("cpu", verbose=False)


@lru_cache(maxsize=1)
def get_voice_models() -> VoiceModels:
    return VoiceModels()


# -- voice activity ---------------------------------------------------------------------------
def voice_activity(audio: np.ndarray, min_speech: float = 0.15) -> list[tuple[float, float]]:
    """Voiced segments as (start, end) seconds."""
    import torch
    from silero_vad import get_speech_timestamps

    if audio.size < SR // 10:
        return []
    m = get_voice_models()
    with m.lock:
        stamps = get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), m.vad,
                                       sampling_rate=SR, min_speech_duration_ms=int(min_speech * 1000))
    return [(s["start"] / SR, s["end"] / SR) for s in stamps]


def voiced_audio(audio: np.ndarray, segments: list[tuple[float, float]]) -> np.ndarray:
    parts = [audio[int(a * SR): int(b * SR)] for a, b in segments]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


# -- speaker identity -------------------------------------------------------------------------
def speaker_template(audio: np.ndarray, min_speech: float = 1.0) -> np.ndarray:
    """Speaker template: Resemblyzer partial embeddings (k×256, unit rows, one per 1.6 s window
    every 0.4 s) of the utterance after Resemblyzer's own normalisation and silence trimming.
    Raises VoiceError under min_speech seconds of speech."""
    from resemblyzer import preprocess_wav

    audio = np.asarray(audio, dtype=np.float32)
    if audio.size == 0 or float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) < 1e-4:
        raise VoiceError("no speech: the audio is silent")
    wav = preprocess_wav(audio, source_sr=SR)
    if wav.size < min_speech * SR:
        raise VoiceError(f"not enough speech ({wav.size / SR:.1f} s; at least {min_speech:g} s)")
    m = get_voice_models()
    with m.lock:
        _, partials, _ = m.encoder.embed_utterance(wav, return_partials=True, rate=2.5)
    return np.asarray(partials, dtype=np.float32)


def template_vector(template: np.ndarray) -> np.ndarray:
    """One unit vector for a template (for 1:N search); a vector is returned as it is."""
    t = np.asarray(template, dtype=np.float32)
    v = t.mean(0) if t.ndim == 2 else t
    return v / (np.linalg.norm(v) + 1e-9)


def _directed(a: np.ndarray, b: np.ndarray) -> float:
    best = np.sort((a @ b.T).max(1))
    return float(best[len(best) // 4:].mean())


def speaker_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Similarity of two templates: for each window of one, its best match in the other; the
    mean of the best 75 % of those, both ways. Plain vectors compare by cosine."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.ndim == 1 or b.ndim == 1:
        return float(np.dot(template_vector(a), template_vector(b)))
    return 0.5 * (_directed(a, b) + _directed(b, a))


def same_speaker(a: np.ndarray, b: np.ndarray, threshold: float = SPEAKER_MATCH_THRESHOLD) -> bool:
    return speaker_similarity(a, b) >= threshold


def speaker_consistency(audio: np.ndarray, segments: list[tuple[float, float]], window: float = 2.5) -> dict:
    """Is it one speaker? Stretches of ~window seconds of speech are compared with each other
    (the lowest pairwise similarity decides); also returns the template of the whole."""
    whole = speaker_template(audio)
    voiced = voiced_audio(audio, segments)
    n = int(voiced.size // (window * SR))
    parts = []
    for k in range(n):
        try:
            parts.append(speaker_template(voiced[int(k * window * SR): int((k + 1) * window * SR)], min_speech=1.0))
        except VoiceError:
            continue
    sims = [speaker_similarity(a, b) for i, a in enumerate(parts) for b in parts[i + 1:]]
    low = min(sims) if sims else 1.0
    return {"one_speaker": low >= SPEAKER_MATCH_THRESHOLD - 0.1, "min_similarity": round(low, 3),
            "windows": len(parts), "template": whole}


# -- repeated recordings ----------------------------------------------------------------------
# Normalized cross-correlation of 0.3 s windows that sound throughout with the rest of the audio: no
# two stretches of natural speech match sample for sample (LibriSpeech ≤ 0.84, the shared clips'
# speech ≤ 0.84, d12 captures whose recurring digits are different takes ≤ 0.85), while one recording
# used twice stays ≥ 0.99, also after AAC at 32 kbit/s or Opus at 24 kbit/s (bench/bench_attacks.py).
REPEATED_SOUND_MAX = 0.98


def repeated_sound(audio: np.ndarray, window: float = 0.3, hop: float = 0.1) -> float:
    """The highest normalized cross-correlation between a window of the audio that sounds
    throughout and any other such stretch at least one window away (0 when there is none). Above
    REPEATED_SOUND_MAX the same recording occurs twice: speech pieced together from recorded or
    synthesized words (nobody says a word twice the same way, sample for sample)."""
    from scipy.fft import irfft, next_fast_len, rfft
    from scipy.signal import butter, sosfiltfilt

    n = int(window * SR)
    if audio.size < 2 * n:
        return 0.0
    x = sosfiltfilt(butter(4, 300, "highpass", fs=SR, output="sos"), np.asarray(audio, np.float64))  # no hum
    peak = float(np.abs(x).max())
    energy = np.concatenate([[0.0], np.cumsum(x * x)])

    def window_energy(m: int) -> np.ndarray:  # of x[t:t+m] for every t
        return energy[m:] - energy[:-m]

    whole = window_energy(n)
    sounding = whole > (0.1 * peak) ** 2 * n  # loud overall…
    third = window_energy(n // 3)
    for k in range(3):  # …and no silence in any third of the window
        sounding &= third[k * (n // 3): k * (n // 3) + whole.size] > (0.02 * peak) ** 2 * (n // 3)
    size = next_fast_len(x.size + n - 1)
    spectrum = rfft(x, size)  # once: each window's correlation with the whole is one product with it
    offsets = np.arange(whole.size)
    best = 0.0
    for start in np.flatnonzero(sounding[::int(hop * SR)]) * int(hop * SR):
        chunk = x[start:start + n]
        corr = irfft(spectrum * rfft(chunk[::-1], size), size)[n - 1: n - 1 + whole.size]
        ncc = corr / (np.sqrt(whole * whole[start]) + 1e-12)
        other = sounding & (np.abs(offsets - start) >= n)
        if other.any():
            best = max(best, float(ncc[other].max()))
    return best


# -- quality ----------------------------------------------------------------------------------
def speech_quality(audio: np.ndarray, segments: list[tuple[float, float]]) -> dict:
    """Voiced seconds, SNR estimate (speech vs non-speech energy, dB) and share of clipped samples."""
    mask = np.zeros(audio.size, bool)
    for a, b in segments:
        mask[int(a * SR): int(b * SR)] = True
    speech, noise = audio[mask], audio[~mask]
    p_s = float(np.mean(speech.astype(np.float64) ** 2)) if speech.size else 0.0
    p_n = float(np.mean(noise.astype(np.float64) ** 2)) if noise.size > SR // 10 else 1e-8
    snr = 10 * np.log10(max(p_s - p_n, 1e-12) / max(p_n, 1e-10)) if p_s else -100.0
    clipping = float(np.mean(np.abs(audio) > 0.99)) if audio.size else 0.0
    return {"voiced_seconds": round(float(mask.sum()) / SR, 2), "snr_db": round(float(snr), 1),
            "clipping": round(clipping, 5), "duration": round(audio.size / SR, 2)}


# -- spoken digits ----------------------------------------------------------------------------
@dataclass
class CodeResult:
    ok: bool
    recognized: str  # every digit heard, in order
    expected: str
    edit_distance: int  # of the closest stretch of what was heard

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def verify_code(audio: np.ndarray | Hearing, expected: str) -> CodeResult:
    """Was `expected` spoken? Verification of a known text, not open recognition, with Whisper
    (analysis.speech_recognition): the digits heard must end in the code, up to one recognizer's
    slip (the statement's words before it and words said after it do not count), whether the audio
    is the code alone or the whole statement. Pass a speech_recognition.Hearing to check several
    codes against one recording without decoding it again. bench/bench_accuracy.py and `avatar eval
    codes` measure both error kinds."""
    from avatar.analysis import speech_recognition as asr

    if not expected.isdigit():
        raise ValueError("expected code must be digits")
    hearing = audio if isinstance(audio, asr.Hearing) else asr.Hearing(audio)
    ok, heard = hearing.check(expected)
    return CodeResult(ok, heard.digit_string, expected, asr.code_distance(heard.digit_string, expected))
