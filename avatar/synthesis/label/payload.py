"""The watermark payload: a 32-bit watermark id, a 16-bit MAC and a 16-bit sync word, 64 bits.

Both the MAC and the marks' spreading patterns are keyed by the installation's own watermark key
(`Config.watermark_key`, kept apart from the master key so key rotation does not touch it): a
mark made by another installation, or by anyone who has this source code, does not read here,
and one that reads here carries an id that only this installation can have signed. The MAC is
HMAC-SHA-256 of the id under the key, truncated to 16 bits; together with the sync word and the
id having to name one of this installation's generations, a forged mark is taken for ours with
odds far below one in a million per try."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from itertools import combinations

import numpy as np

WEAKEST = 10
SYNC = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0], np.int8)
N_BITS = 64


def new_watermark_id() -> str:
    return secrets.token_hex(4)


def check_key(key: bytes) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) < 16:
        raise ValueError("a watermark key is at least 16 bytes")
    return bytes(key)


def _mac(key: bytes, raw: bytes) -> bytes:
    return hmac.new(check_key(key), b"avatar-wm-id:" + raw, hashlib.sha256).digest()[:2]


def encode(watermark_id: str, key: bytes) -> np.ndarray:
    """64 bits (0/1): sync, 32 id bits, the keyed MAC of the id."""
    raw = bytes.fromhex(watermark_id)
    if len(raw) != 4:
        raise ValueError("a watermark id is 8 hex characters")
    bits = np.unpackbits(np.frombuffer(raw + _mac(key, raw), np.uint8)).astype(np.int8)
    return np.concatenate([SYNC, bits])


def decode(scores: np.ndarray, key: bytes, flips: int = 0) -> tuple[str | None, float]:
    """From 64 soft scores (positive = 1) to the id, or None if the sync or MAC do not hold.
    flips > 0 also tries flipping up to that many of the WEAKEST least reliable bits (chase decoding),
    for short media where a bit or two are wrong. Returns (id, confidence: the mean |score| of the
    bits over their spread)."""
    bits = (scores > 0).astype(np.int8)
    weakest = np.argsort(np.abs(scores))[:WEAKEST]
    candidates = [()] + [tuple(c) for k in range(1, flips + 1) for c in combinations(weakest, k)]
    for flip in candidates:
        trial = bits.copy()
        trial[list(flip)] ^= 1
        found = _check(trial, key)
        if found is not None:
            mags = np.abs(scores)
            return found, float(np.mean(mags) / (np.std(mags) + 1e-9))
    return None, 0.0


MAX_ERASED_DATA = 12  # id and MAC bits a decode may fill in by trying every value
MIN_SYNC_SEEN = 8


def decode_erased(scores: np.ndarray, erased: np.ndarray, key: bytes) -> tuple[str | None, float]:
    """decode() for a payload some of whose bits were not received (erased: a mask of 64; e.g. the
    blocks a crop cut away). The sync word is checked on its bits that were received (at least
    MIN_SYNC_SEEN, at most one wrong); erased id and MAC bits (at most MAX_ERASED_DATA) are tried
    every way, and the id is accepted only when exactly one filling passes the MAC."""
    erased = np.asarray(erased, bool)
    seen = ~erased[:16]
    bits = (scores > 0).astype(np.int8)
    if seen.sum() < MIN_SYNC_SEEN or np.sum(bits[:16][seen] != SYNC[seen]) > 1:
        return None, 0.0
    holes = np.flatnonzero(erased[16:]) + 16
    if holes.size > MAX_ERASED_DATA:
        return None, 0.0
    found = set()
    for fill in range(1 << holes.size):
        trial = bits.copy()
        trial[:16] = SYNC
        trial[holes] = (fill >> np.arange(holes.size)) & 1
        wm = _check(trial, key)
        if wm is not None:
            found.add(wm)
    if len(found) != 1:
        return None, 0.0
    mags = np.abs(scores[~erased])
    return found.pop(), float(np.mean(mags) / (np.std(mags) + 1e-9))


def _check(bits: np.ndarray, key: bytes) -> str | None:
    if np.sum(bits[:16] != SYNC) > 1:
        return None
    data = np.packbits(bits[16:]).tobytes()
    raw, mac = data[:4], data[4:]
    return raw.hex() if hmac.compare_digest(_mac(key, raw), mac) else None


def keyed_rng(key: bytes, label: str, *salt: int) -> np.random.Generator:
    """A generator seeded from the key: the same patterns for the same key, unguessable without it."""
    digest = hmac.new(check_key(key), f"{label}:{':'.join(map(str, salt))}".encode(), hashlib.sha256).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))
