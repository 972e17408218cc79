"""Invisible video watermark: the 64-bit payload in every frame's luminance.

The frame is an 8×8 grid of blocks, one bit each. A block carries its bit as ±AMPLITUDE grey
levels times a keyed, smoothed random pattern of 8×8-pixel cells (at 512 px; the grid and
pattern scale with the frame, so resizing keeps them). The detector scales frames to 256 px,
removes the picture's coarse content (high-pass), correlates each block with its pattern and
averages over the frames it reads, so re-encoding, resizing to 360p and trimming keep it;
a payload is accepted only when its sync word and MAC hold. Patterns and MAC are keyed by the
installation's watermark key (payload.py).

Cropping (e.g. the band with the visible label cut off) moves the grid. When the mark does not read
in place, the detector searches the crop: which fraction of each side of the original was cut, the
rest scaled to the frame. A crop is scored by the energy of the 64 block correlations, whatever the
bits (summed over the slot phases), on a 4-pixel grid of crops up to CROP_MAX per side (top and
bottom, or left and right), then refined pixel by pixel over all four sides. Only an alignment far
above what unmarked video reaches (ALIGN_MIN) is decoded; blocks the crop removed are erased bits,
which the sync word and MAC are checked without (payload.decode_erased)."""
from __future__ import annotations

from functools import lru_cache
from itertools import product

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
def _canon_pattern(key: bytes) -> np.ndarray:
    """The high-passed pattern at CANON × CANON; block b's correlation is its product with a frame
    summed over block b."""
    return _highpass(_pattern(CANON, CANON, key))


def _canon_grey(frame: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return _highpass(cv2.resize(grey, (CANON, CANON), interpolation=cv2.INTER_AREA))


def _block_sums(images: np.ndarray) -> np.ndarray:
    """(..., CANON, CANON) → (..., 64): each grid block summed."""
    b = CANON // GRID
    return images.reshape(*images.shape[:-2], GRID, b, GRID, b).sum(axis=(-3, -1)).reshape(*images.shape[:-2], -1)


OFFSETS = np.arange(0, PERIOD - 1e-9, 0.04)  # phases of the slot sequence tried (a trimmed clip starts anywhere)
CHUNK = 32  # frames demodulated at once
# the crop search: at most this fraction cut from each side, a grid of SEARCH_STEP canon pixels
# (the pattern's correlation halves about 2.5 px off), then 1 px steps
CROP_MAX = 0.25
SEARCH_STEP = 4
# Alignment (the best crop's block energy over the median of the first grid's, in median absolute
# deviations) needed before a crop's bits are decoded. bench/bench_video_mark.py, two random keys:
# the 44 real clips of talking/ and video/ reach 12.6 and 15.0 at most, renders under another key
# 6.5; our renders of 15 real clips after the label band is cut (360 px, CRF 28 or 30), top and
# bottom, a fifth of the width, top and sides, 8 % all round: 57 or more; cut to a centre 16:9
# (22 % off top and bottom) 21.9-42, all 15 read. Reading short files at their own frame rate
# (verification.video_read_fps; 2026-12-07, one run): real clips 11.3 at most, another key 7.2, the
# centre 16:9 27.8-48, every variant 15/15. Decoding then needs the sync word and the MAC.
ALIGN_MIN = 20.0
ERASED_BELOW = 0.25  # a block with less of it left in the picture is an erased bit


class Reader:
    """Reads the mark from frames given one at a time (a long file need not be held): each frame's
    high-passed grey picture is folded, per phase of the slot sequence, into a demodulated sum."""

    def __init__(self, key: bytes):
        self.key = payload.check_key(key)
        self.times: list[float] = []
        self._buffer: list[np.ndarray] = []
        self._sums = np.zeros((len(OFFSETS), CANON * CANON), np.float64)  # Σ sign(t + o) · frame
        self._total = np.zeros(CANON * CANON, np.float64)  # Σ frame

    def add(self, frame: np.ndarray, t: float) -> None:
        self.times.append(float(t))
        self._buffer.append(_canon_grey(frame).reshape(-1))
        if len(self._buffer) == CHUNK:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        chunk = np.array(self._buffer, np.float64)
        times = np.array(self.times[-len(chunk):])
        self._sums += _slot_sign(times[None, :] + OFFSETS[:, None]) @ chunk
        self._total += chunk.sum(axis=0)
        self._buffer = []

    def demodulated(self) -> np.ndarray:
        """Per phase: Σ sign · (frame − mean frame), CANON × CANON (the still picture cancels)."""
        self._flush()
        times = np.array(self.times)
        signs = _slot_sign(times[None, :] + OFFSETS[:, None]).sum(axis=1)
        mean = self._total / max(1, len(times))
        return (self._sums - signs[:, None] * mean).reshape(len(OFFSETS), CANON, CANON).astype(np.float32)

    def result(self) -> dict:
        """{"found", "watermark_id", "confidence", "frames", "crop"}: crop is None when the mark
        read in place, else the fractions {"top", "bottom", "left", "right"} of the original cut off;
        "alignment" when the crop was searched (see ALIGN_MIN)."""
        n = len(self.times)
        none = {"found": False, "watermark_id": None, "confidence": 0.0, "frames": n, "crop": None}
        if n < 4 or max(self.times) - min(self.times) < PERIOD / 2:
            return none
        demod = self.demodulated()
        pattern = _canon_pattern(self.key)
        found = _decode_phases(_block_sums(demod * pattern), None, self.key)
        if found is not None:
            return {**none, **found}
        crop, alignment = find_crop(demod[_distinct_phases(np.array(self.times))], pattern)
        none["alignment"] = round(alignment, 1)
        if alignment < ALIGN_MIN:
            return none
        scores = np.stack([_block_sums(_uncrop(d, crop) * pattern) for d in demod])
        found = _decode_phases(scores, _coverage(crop) < ERASED_BELOW, self.key)
        if found is None:
            return none
        return {**none, **found, "crop": {k: round(v, 3) for k, v in zip(("top", "bottom", "left", "right"), crop)}}


def _decode_phases(scores: np.ndarray, erased: np.ndarray | None, key: bytes) -> dict | None:
    """The best-confidence payload over the phases' 64 block scores, or None."""
    best = None
    for row in scores:
        wm, conf = payload.decode(row, key) if erased is None else payload.decode_erased(row, erased, key)
        if wm is not None and (best is None or conf > best["confidence"]):
            best = {"found": True, "watermark_id": wm, "confidence": round(conf, 2)}
    return best


def _distinct_phases(times: np.ndarray) -> list[int]:
    """Indices of OFFSETS whose sign sequences over these frames differ (a sequence and its negative
    count once: they give the same energy)."""
    keep, seen = [], set()
    for i, o in enumerate(OFFSETS):
        signs = _slot_sign(times + o).astype(np.int8)
        if signs.tobytes() not in seen:
            keep.append(i)
            seen.update({signs.tobytes(), (-signs).tobytes()})
    return keep


def _uncrop(image: np.ndarray, crop: tuple[float, float, float, float]) -> np.ndarray:
    """The observed (CANON × CANON, any channels) placed where it was in the uncropped original:
    crop = fractions cut from (top, bottom, left, right); what was cut is zero."""
    top, bottom, left, right = crop
    sy, sx = 1 - top - bottom, 1 - left - right
    m = np.float32([[sx, 0, left * CANON + 0.5 * sx - 0.5], [0, sy, top * CANON + 0.5 * sy - 0.5]])
    return cv2.warpAffine(image, m, (CANON, CANON), flags=cv2.INTER_LINEAR, borderValue=0)


def _coverage(crop: tuple[float, float, float, float]) -> np.ndarray:
    """Per block: the fraction of it still in the picture after the crop."""
    top, bottom, left, right = crop
    edges = np.arange(GRID + 1) / GRID
    rows = np.clip(np.minimum(edges[1:], 1 - bottom) - np.maximum(edges[:-1], top), 0, None) * GRID
    cols = np.clip(np.minimum(edges[1:], 1 - right) - np.maximum(edges[:-1], left), 0, None) * GRID
    return np.outer(rows, cols).reshape(-1)


def _energy(stack: np.ndarray, pattern: np.ndarray, crop) -> float:
    """Σ over phases and blocks of the squared block correlations, the grid uncropped by `crop`
    (stack: CANON × CANON × phases)."""
    placed = _uncrop(stack, crop).reshape(CANON, CANON, -1) * pattern[..., None]
    return float((_block_sums(np.moveaxis(placed, -1, 0)) ** 2).sum())


def _row_crops(demod: np.ndarray, pattern: np.ndarray, crops: np.ndarray) -> np.ndarray:
    """The energy of each (top, bottom) crop of the rows alone, for many crops at once: the
    correlation of block (r, c) is Σ over its rows y of the pattern's row y against the picture's
    row y' it came from (interpolated), so the row-by-row products of each block column are formed
    once (phases × GRID × CANON × CANON) and each crop only gathers from them."""
    b = CANON // GRID
    pat = pattern.reshape(CANON, GRID, b).transpose(1, 0, 2)  # c, y, x
    pic = demod.reshape(len(demod), CANON, GRID, b).transpose(0, 2, 3, 1)  # p, c, x, y'
    gram = np.matmul(pat[None], pic)  # p, c, y, y'
    top, bottom = crops[:, 0:1], crops[:, 1:2]
    scale = 1 - top - bottom
    y = np.arange(CANON)[None, :]
    src = (y - top * CANON - 0.5 * scale + 0.5) / scale  # the observed row each original row came from
    i0 = np.floor(src).astype(int)
    frac = (src - i0).astype(np.float32)
    w0 = np.where((i0 >= 0) & (i0 < CANON), 1 - frac, 0)
    w1 = np.where((i0 + 1 >= 0) & (i0 + 1 < CANON), frac, 0)
    i0c, i1c = np.clip(i0, 0, CANON - 1), np.clip(i0 + 1, 0, CANON - 1)
    out = np.zeros(len(crops))
    for p in range(len(demod)):
        g = gram[p][:, y, i0c] * w0 + gram[p][:, y, i1c] * w1  # c, crop, y
        scores = g.reshape(GRID, len(crops), GRID, b).sum(axis=3)  # c, crop, r
        out += (scores.astype(np.float64) ** 2).sum(axis=(0, 2))
    return out


def find_crop(demod: np.ndarray, pattern: np.ndarray) -> tuple[tuple[float, float, float, float], float]:
    """The crop (fractions cut from top, bottom, left, right) that best aligns the demodulated
    phases with the pattern, and its alignment (energy over the median of the first grid's, in
    median absolute deviations). Rows and columns are searched apart (a crop scales them apart):
    the rows with the columns in place and the columns with the rows in place, then each again with
    the other's best applied, then all four sides refined pixel by pixel."""
    steps = np.arange(0, CROP_MAX + 1e-9, SEARCH_STEP / CANON)
    pairs = np.array(list(product(steps, steps)))
    flipped = np.ascontiguousarray(demod.transpose(0, 2, 1))
    rows, cols = _row_crops(demod, pattern, pairs), _row_crops(flipped, pattern.T, pairs)
    first = np.concatenate([rows, cols])
    rb, cb = pairs[int(np.argmax(rows))], pairs[int(np.argmax(cols))]
    cols_placed = np.stack([_uncrop(d, (0.0, 0.0, *cb)) for d in demod])
    rows_placed = np.stack([_uncrop(d, (*rb, 0.0, 0.0)) for d in demod])
    rows2 = _row_crops(cols_placed, pattern, pairs)
    cols2 = _row_crops(np.ascontiguousarray(rows_placed.transpose(0, 2, 1)), pattern.T, pairs)
    stack = np.ascontiguousarray(np.moveaxis(demod, 0, -1))
    candidates = [(*rb, 0.0, 0.0), (0.0, 0.0, *cb), (*pairs[int(np.argmax(rows2))], *cb),
                  (*rb, *pairs[int(np.argmax(cols2))])]
    energies = [_energy(stack, pattern, c) for c in candidates]
    crop, best = list(candidates[int(np.argmax(energies))]), max(energies)
    for _ in range(3):  # refine each side pixel by pixel while it improves
        moved = False
        for side in range(4):
            for delta in (-2, -1, 1, 2):
                trial = list(crop)
                trial[side] = float(np.clip(crop[side] + delta / CANON, 0.0, CROP_MAX + SEARCH_STEP / CANON))
                e = _energy(stack, pattern, tuple(trial))
                if e > best:
                    crop, best, moved = trial, e, True
        if not moved:
            break
    median = float(np.median(first))
    spread = float(np.median(np.abs(first - median))) + 1e-9
    return tuple(float(x) for x in crop), (best - median) / spread

