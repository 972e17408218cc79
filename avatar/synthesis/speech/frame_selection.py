"""Conversion toward the enrolled voice by frame selection: the synthetic speech's spectral envelope
and aperiodicity are drawn toward frames of the person's own enrolled speech.

The enrolled speech is analysed once (WORLD, 5 ms frames) into a bank of its speech frames: for
each, its envelope, aperiodicity, voicing and a matching key (the envelope's mel-cepstrum without
its level, with its change over ±2 frames, normalised over the bank). Each frame of the speech to
convert (already moved toward the voice by offline.adapt: pitch, formant warp, timbre) is keyed the
same way, normalised over its own frames; its K nearest bank frames of the same voicing give the
mean of their log envelopes and aperiodicities, blended with the frame's own (MIX), smoothed over
time and scaled to the source frame's loudness; WORLD resynthesises with the source's pitch. The
idea of kNN-VC (Baas et al., 2023) with cepstra and a WORLD vocoder instead of WavLM features and
HiFi-GAN, whose weights cannot be installed here. Takes and returns float32 audio at SR."""
from __future__ import annotations

import numpy as np

from avatar.synthesis.speech import ReferenceCache, world

SR = 16000
N_CEP = 24  # mel-cepstral coefficients of the key (c1..c24)
DELTA = 2  # frames each side for the key's change
K = 16  # nearest bank frames averaged
# The converted log envelope is this much the bank's and the rest the source's: all of it (MIX 1)
# reached Resemblyzer 0.71-0.82 on the 5 speakers of voices/ but Whisper lost 70-100 % of the words
# (frames matched on cepstra across two voices often sound another phone); 0.55 keeps the words
# (bench_clone.py, README)
MIX = 0.55
SMOOTH = 5  # frames of the moving average over the converted envelopes (25 ms)
SPEECH_RANGE_DB = 45.0  # bank frames within this of the loud frames (the rest is silence)
MIN_BANK_FRAMES = 400  # 2 s of speech frames at least
CHUNK = 1024  # source frames matched at once (bounds the distance matrix)


class ConversionError(ValueError):
    pass


def _keys(sp: np.ndarray) -> np.ndarray:
    """Per frame: mel-cepstrum c1..N_CEP and its change over ±DELTA frames."""
    import pyworld as pw

    cep = pw.code_spectral_envelope(np.ascontiguousarray(sp), SR, N_CEP + 1)[:, 1:]
    pad = np.pad(cep, ((DELTA, DELTA), (0, 0)), mode="edge")
    delta = pad[2 * DELTA:] - pad[: len(cep)]
    return np.hstack([cep, delta]).astype(np.float32)


def _level_db(sp: np.ndarray) -> np.ndarray:
    return 10 * np.log10(sp.sum(axis=1) + 1e-12)


class FrameBank:
    """The enrolled speech's frames: keys (normalised), log envelopes, aperiodicities, voicing."""

    def __init__(self, audio: np.ndarray):
        f0, sp, ap = world.analyse(audio, SR)
        level = _level_db(sp)
        speech = level >= np.percentile(level, 95) - SPEECH_RANGE_DB if level.size else np.zeros(0, bool)
        if speech.sum() < MIN_BANK_FRAMES:
            raise ConversionError("the enrolled voice has too little speech to convert toward "
                                  f"(at least {MIN_BANK_FRAMES * 0.005:.0f} s)")
        keys = _keys(sp)[speech]
        self.keys = (keys - keys.mean(axis=0)) / (keys.std(axis=0) + 1e-6)
        self.log_sp = np.log(sp[speech] + 1e-12).astype(np.float32)
        self.ap = ap[speech].astype(np.float32)
        self.voiced = f0[speech] > 0

    def nearest(self, keys: np.ndarray, voiced: np.ndarray) -> np.ndarray:
        """Indices (frames × K) of the nearest bank frames of the same voicing (either, if the bank
        has too few of that voicing)."""
        out = np.zeros((len(keys), K), int)
        for want in (True, False):
            rows = np.flatnonzero(voiced == want)
            pool = np.flatnonzero(self.voiced == want)
            if len(pool) < K:
                pool = np.arange(len(self.keys))
            bank = self.keys[pool]
            bank_sq = (bank ** 2).sum(axis=1)
            for start in range(0, len(rows), CHUNK):
                q = keys[rows[start:start + CHUNK]]
                dist = bank_sq[None, :] - 2 * q @ bank.T
                out[rows[start:start + CHUNK]] = pool[np.argpartition(dist, K - 1, axis=1)[:, :K]]
        return out


_BANKS: ReferenceCache[FrameBank] = ReferenceCache(FrameBank, keep=8)


def frame_bank(reference: np.ndarray) -> FrameBank:
    """Cached per process by the reference's hash (as offline.voice_model)."""
    return _BANKS.get(reference)


def convert(audio: np.ndarray, bank: FrameBank) -> np.ndarray:
    """The speech with each frame's envelope and aperiodicity taken from the bank (see module)."""
    import pyworld as pw
    from scipy.ndimage import uniform_filter1d

    f0, sp, ap = world.analyse(audio, SR)
    raw = _keys(sp)
    keys = (raw - raw.mean(axis=0)) / (raw.std(axis=0) + 1e-6)  # each side normalised over its own frames
    idx = bank.nearest(keys, f0 > 0)
    log_sp = MIX * bank.log_sp[idx].mean(axis=1) + (1 - MIX) * np.log(sp + 1e-12)
    new_ap = MIX * bank.ap[idx].mean(axis=1) + (1 - MIX) * ap
    if SMOOTH > 1:
        log_sp = uniform_filter1d(log_sp, SMOOTH, axis=0, mode="nearest")
        new_ap = uniform_filter1d(new_ap, SMOOTH, axis=0, mode="nearest")
    # each frame as loud as the source's
    gain = (_level_db(sp) - _level_db(np.exp(log_sp))) * (np.log(10) / 10)
    new_sp = np.exp(log_sp + gain[:, None]).astype(np.float64)
    y = pw.synthesize(f0, np.ascontiguousarray(new_sp), np.ascontiguousarray(np.clip(new_ap, 0, 1), np.float64),
                      SR, frame_period=5.0)
    peak = np.max(np.abs(y)) if y.size else 0.0
    return (y / peak * 0.95 if peak > 0.95 else y).astype(np.float32)

