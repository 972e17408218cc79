"""The watermark payload: a 32-bit watermark id with a 16-bit CRC and a 16-bit sync word, 64 bits."""
from __future__ import annotations

import binascii
import secrets
from itertools import combinations

import numpy as np

WEAKEST = 10
SYNC = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0], np.int8)
N_BITS = 64


def new_watermark_id() -> str:
    return secrets.token_hex(4)


def encode(watermark_id: str) -> np.ndarray:
    """64 bits (0/1): sync, 32 id bits, CRC-16 of the id."""
    raw = bytes.fromhex(watermark_id)
    if len(raw) != 4:
        raise ValueError("a watermark id is 8 hex characters")
    crc = binascii.crc_hqx(raw, 0xFFFF).to_bytes(2, "big")
    bits = np.unpackbits(np.frombuffer(raw + crc, np.uint8)).astype(np.int8)
    return np.concatenate([SYNC, bits])


def decode(scores: np.ndarray, flips: int = 0) -> tuple[str | None, float]:
    """From 64 soft scores (positive = 1) to the id, or None if the sync or CRC do not hold.
    flips > 0 also tries flipping up to that many of the WEAKEST least reliable bits (chase decoding),
    for short media where a bit or two are wrong. Returns (id, confidence: the mean |score| of the
    bits over their spread)."""
    bits = (scores > 0).astype(np.int8)
    weakest = np.argsort(np.abs(scores))[:WEAKEST]
    candidates = [()] + [tuple(c) for k in range(1, flips + 1) for c in combinations(weakest, k)]
    for flip in candidates:
        trial = bits.copy()
        trial[list(flip)] ^= 1
        found = _check(trial)
        if found is not None:
            mags = np.abs(scores)
            return found, float(np.mean(mags) / (np.std(mags) + 1e-9))
    return None, 0.0


def _check(bits: np.ndarray) -> str | None:
    if np.sum(bits[:16] != SYNC) > 1:
        return None
    data = np.packbits(bits[16:]).tobytes()
    raw, crc = data[:4], data[4:]
    return raw.hex() if binascii.crc_hqx(raw, 0xFFFF).to_bytes(2, "big") == crc else None


def keyed_rng(key: str, *salt: int) -> np.random.Generator:
    seed = int.from_bytes(binascii.crc32(f"{key}:{':'.join(map(str, salt))}".encode()).to_bytes(4, "big"), "big")
    return np.random.default_rng(seed)
