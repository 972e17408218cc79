"""Invisible audio watermark: the 64-bit payload in the STFT magnitudes of the 0.8–4 kHz band.

Each 4-frame segment (85 ms at 24 kHz) carries 4 bits, one per sub-band: in a keyed half of the
sub-band's bins the magnitude is raised by DELTA, in the other half lowered (bit 1), or the other
way round (bit 0). The 64 bits repeat every 16 segments (1.4 s). The detector resamples to 24 kHz,
tries the 4 segment phases and 16 cycle rotations, soft-combines the repeats (log magnitudes with a
level-relative floor, clipped, with the voice's long-term and slow spectral changes removed) and
accepts only a payload whose sync word and keyed MAC hold, trying flips of the least reliable bits for
short clips. MP3/OGG/AAC re-encoding and trimming keep it readable while other audio reads as
unmarked; clips under ~5 s after lossy coding are read only some of the time (bench_watermark).
The bin signs and the MAC are keyed by the installation's watermark key (payload.py)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import istft, resample_poly, stft

from avatar.synthesis.label import payload

SR = 24000
N_FFT, HOP = 1024, 512
FRAMES_PER_SEGMENT = 4
SUBBANDS = [(800, 1600), (1600, 2400), (2400, 3200), (3200, 4000)]
DELTA = 0.4
GROUP = 4
LABEL = "avatar-audio-wm-2"
CLIP = 2.0
LOCAL_FRAMES = 9
FLIPS = 3  # the weakest bits that may be corrected (CRC and sync still decide)
MIN_CONFIDENCE = 0.0  # the sync word and CRC decide; confidence is reported


@lru_cache(maxsize=4)
def _bin_sets(key: bytes):
    """For each bit position and its sub-band: the bins, and a keyed ±1 sign per group of GROUP
    contiguous bins (codecs keep the spectral envelope at about this resolution, not single bins).
    A different sign pattern per bit keeps the voice's own spectral shape from biasing them alike."""
    freqs = np.fft.rfftfreq(N_FFT, 1 / SR)
    out = []
    for b in range(payload.N_BITS):
        lo, hi = SUBBANDS[b % len(SUBBANDS)]
        idx = np.flatnonzero((freqs >= lo) & (freqs < hi))
        n_groups = len(idx) // GROUP
        idx = idx[: n_groups * GROUP]
        group_signs = np.ones(n_groups)
        group_signs[payload.keyed_rng(key, LABEL, b).permutation(n_groups)[: n_groups // 2]] = -1
        out.append((idx, np.repeat(group_signs, GROUP)))
    return out


BITS_PER_CYCLE = payload.N_BITS
SEGMENTS_PER_CYCLE = BITS_PER_CYCLE // len(SUBBANDS)


def embed(audio: np.ndarray, sr: int, watermark_id: str, key: bytes) -> np.ndarray:
    """The audio (float32, mono, at sr == 24 kHz) with the watermark."""
    if sr != SR:
        raise ValueError(f"embed at {SR} Hz")
    sets = _bin_sets(payload.check_key(key))
    bits = payload.encode(watermark_id, key) * 2 - 1
    _, _, Z = stft(audio, SR, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary="even", padded=True)
    gain = np.ones(Z.shape)
    for t in range(Z.shape[1]):
        seg = t // FRAMES_PER_SEGMENT
        for k in range(len(SUBBANDS)):
            b = (seg % SEGMENTS_PER_CYCLE) * len(SUBBANDS) + k
            idx, signs = sets[b]
            gain[idx, t] = np.exp(DELTA * bits[b] * signs)
    _, out = istft(Z * gain, SR, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=True)
    out = out[: len(audio)].astype(np.float32)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    return out / peak * 0.98 if peak > 0.98 else out


def detect(audio: np.ndarray, sr: int, key: bytes) -> dict:
    """{"found": bool, "watermark_id": str|None, "confidence": float}."""
    sets = _bin_sets(payload.check_key(key))
    audio = np.asarray(audio, np.float32)
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if sr != SR:
        g = np.gcd(int(sr), SR)
        audio = resample_poly(audio, SR // g, int(sr) // g).astype(np.float32)
    none = {"found": False, "watermark_id": None, "confidence": 0.0}
    if audio.size < N_FFT * 8:
        return none
    _, _, Z = stft(audio, SR, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary="even", padded=True)
    mag = np.abs(Z)
    # a floor relative to each frame's level: bins a codec zeroed must not dominate as log(0)
    logmag = np.log(mag + 0.05 * np.sqrt(np.mean(mag ** 2, axis=0, keepdims=True)) + 1e-9)
    logmag -= np.median(logmag, axis=1, keepdims=True)  # the voice's long-term spectrum
    logmag = np.clip(logmag, -CLIP, CLIP)
    logmag -= uniform_filter1d(logmag, LOCAL_FRAMES, axis=1, mode="nearest")  # and its slow changes
    lo_bin, hi_bin = sets[0][0][0], max(idx[-1] for idx, _ in sets[:len(SUBBANDS)])
    energy = 10 * np.log10(np.mean(mag[lo_bin:hi_bin] ** 2, axis=0) + 1e-12)
    weight = (energy > energy.max() - 60).astype(np.float64)  # digital silence carries nothing
    # for every frame, the keyed difference under each of the 64 bit patterns
    diff = np.stack([(logmag[idx] * signs[:, None]).mean(axis=0) for idx, signs in sets], axis=1) * weight[:, None]
    best = none
    for phase in range(FRAMES_PER_SEGMENT):
        n_seg = (diff.shape[0] - phase) // FRAMES_PER_SEGMENT
        if n_seg < SEGMENTS_PER_CYCLE // 2:
            continue
        seg = diff[phase: phase + n_seg * FRAMES_PER_SEGMENT].reshape(n_seg, FRAMES_PER_SEGMENT, -1).sum(axis=1)
        for rot in range(SEGMENTS_PER_CYCLE):
            acc = np.zeros(payload.N_BITS)
            for j in range(n_seg):
                pos = (j + rot) % SEGMENTS_PER_CYCLE
                cols = slice(pos * len(SUBBANDS), (pos + 1) * len(SUBBANDS))
                acc[cols] += seg[j, cols]
            wm, conf = payload.decode(acc, key, flips=FLIPS)
            if wm is not None and conf >= MIN_CONFIDENCE and conf > best["confidence"]:
                best = {"found": True, "watermark_id": wm, "confidence": round(conf, 2)}
    return best
