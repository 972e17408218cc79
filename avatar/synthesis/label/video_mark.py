"""Invisible video watermark: the 64-bit payload in every frame's luminance.

The frame is an 8×8 grid of blocks, one bit each. A block carries its bit as ±AMPLITUDE grey
levels times a keyed, smoothed random pattern of 8×8-pixel cells (at 512 px; the grid and
pattern scale with the frame, so resizing keeps them). The detector scales frames to 256 px,
removes the picture's coarse content (high-pass), correlates each block with its pattern and
averages over the frames it reads, so re-encoding, resizing to 360p and trimming keep it;
a payload is accepted only when its sync word and MAC hold. Patterns and MAC are keyed by the
installation's watermark key (payload.py)."""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from avatar.synthesis.label import payload

GRID = 8
CANON = 256
CELLS = 6  # pattern cells per block side
AMPLITUDE = 4.0
LABEL = "avatar-video-wm-2"
SLOT = 0.2  # seconds; the mark's sign follows a keyed, zero-sum sequence of slots over time, so
SLOTS = np.array([1, -1, -1, 1, -1, 1, 1, -1], np.float32)  # the still picture cancels out in detection
PERIOD = SLOT * len(SLOTS)


def _slot_sign(t: np.ndarray | float) -> np.ndarray:
    return SLOTS[(np.floor(np.asarray(t) / SLOT).astype(int)) % len(SLOTS)]


@lru_cache(maxsize=8)
def _pattern(h: int, w: int, key: bytes) -> np.ndarray:
    """The keyed ±1 pattern for a h×w frame, smoothed, one sign per bit block still to apply."""
    out = np.zeros((h, w), np.float32)
    for r in range(GRID):
        for c in range(GRID):
            y0, y1 = r * h // GRID, (r + 1) * h // GRID
            x0, x1 = c * w // GRID, (c + 1) * w // GRID
            cells = payload.keyed_rng(key, LABEL, r, c).choice([-1.0, 1.0], size=(CELLS, CELLS)).astype(np.float32)
            out[y0:y1, x0:x1] = cv2.resize(cells, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    sigma = max(0.5, w / GRID / CELLS / 4)
    return cv2.GaussianBlur(out, (0, 0), sigma)


@lru_cache(maxsize=64)
def _signed(h: int, w: int, watermark_id: str, key: bytes) -> np.ndarray:
    bits = payload.encode(watermark_id, key) * 2 - 1
    sign = np.zeros((h, w), np.float32)
    for b in range(payload.N_BITS):
        r, c = divmod(b, GRID)
        sign[r * h // GRID:(r + 1) * h // GRID, c * w // GRID:(c + 1) * w // GRID] = bits[b]
    return (_pattern(h, w, key) * sign * AMPLITUDE)[..., None]


def embed(frame: np.ndarray, watermark_id: str, t: float, key: bytes) -> np.ndarray:
    """One RGB uint8 frame, shown at t seconds, with the mark added to its luminance."""
    h, w = frame.shape[:2]
    mark = _signed(h, w, watermark_id, payload.check_key(key)) * float(_slot_sign(t))
    return np.clip(frame.astype(np.float32) + mark, 0, 255).astype(np.uint8)


def _highpass(grey: np.ndarray) -> np.ndarray:
    return grey - cv2.GaussianBlur(grey, (0, 0), 3.0)


@lru_cache(maxsize=4)
def _canon_patterns(key: bytes) -> np.ndarray:
    pat = _highpass(_pattern(CANON, CANON, key))
    blocks = np.zeros((payload.N_BITS, CANON, CANON), np.float32)
    for b in range(payload.N_BITS):
        r, c = divmod(b, GRID)
        s = slice(r * CANON // GRID, (r + 1) * CANON // GRID), slice(c * CANON // GRID, (c + 1) * CANON // GRID)
        blocks[b][s] = pat[s]
    return blocks.reshape(payload.N_BITS, -1)


def block_scores(frame: np.ndarray, key: bytes) -> np.ndarray:
    """The 64 correlations of one frame (RGB, any size)."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey = cv2.resize(grey, (CANON, CANON), interpolation=cv2.INTER_AREA)
    return _canon_patterns(payload.check_key(key)) @ _highpass(grey).reshape(-1)


def detect(frames, times, key: bytes) -> dict:
    """{"found", "watermark_id", "confidence", "frames"} from RGB frames and their times (s)."""
    return detect_scores([block_scores(f, key) for f in frames], times, key)


def detect_scores(scores, times, key: bytes) -> dict:
    """The same from each frame's block_scores (so a long file can be read one frame at a time).
    Tries every phase of the slot sequence, so a trimmed clip reads as well."""
    scores = np.array(scores, np.float64).reshape(-1, payload.N_BITS)
    times = np.asarray(times, np.float64)
    none = {"found": False, "watermark_id": None, "confidence": 0.0, "frames": len(scores)}
    if len(scores) < 4 or times.max() - times.min() < PERIOD / 2:
        return none
    centred = scores - scores.mean(axis=0)
    best = none
    for offset in np.arange(0, PERIOD, 0.04):
        wm, conf = payload.decode(centred.T @ _slot_sign(times + offset), key)
        if wm is not None and conf > best["confidence"]:
            best = {**none, "found": True, "watermark_id": wm, "confidence": round(conf, 2)}
    return best
