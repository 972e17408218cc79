"""Envelope encryption: AES-256-GCM data keys per subject, wrapped by a master key.

Ciphertext layout: MAGIC (4 bytes) | nonce (12 bytes) | AES-GCM ciphertext+tag.
The associated data binds a ciphertext to its storage key (media) or subject (wrapped keys),
so a blob copied to another place or a key moved to another subject fails to decrypt.
"""
from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MEDIA_MAGIC = b"AVM1"
KEY_MAGIC = b"AVK1"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """Ciphertext was tampered with, moved, or the key is wrong or destroyed."""


def key_id(key: bytes) -> str:
    """A short public fingerprint of a key (never the key itself)."""
    return hashlib.sha256(b"avatar-key-id" + key).hexdigest()[:16]


def seal(key: bytes, plaintext: bytes, aad: bytes, magic: bytes = MEDIA_MAGIC) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return magic + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, blob: bytes, aad: bytes, magic: bytes = MEDIA_MAGIC) -> bytes:
    if len(blob) < len(magic) + NONCE_BYTES + 16 or not blob.startswith(magic):
        raise DecryptionError("not an avatar ciphertext")
    nonce = blob[len(magic): len(magic) + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, blob[len(magic) + NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise DecryptionError("authentication failed: wrong key, tampered or moved data") from exc


class Keyring:
    """The current master key plus older ones still accepted for unwrapping (key rotation)."""

    def __init__(self, current: bytes, previous: list[bytes] | None = None):
        if len(current) != 32:
            raise ValueError("master key must be 32 bytes")
        self.current = current
        self.current_id = key_id(current)
        self._by_id = {key_id(k): k for k in (previous or [])}
        self._by_id[self.current_id] = current

    def new_data_key(self) -> bytes:
        return AESGCM.generate_key(bit_length=256)

    def wrap(self, data_key: bytes, subject_id: int) -> tuple[bytes, str]:
        return seal(self.current, data_key, _subject_aad(subject_id), KEY_MAGIC), self.current_id

    def unwrap(self, wrapped: bytes, master_key_id: str, subject_id: int) -> bytes:
        master = self._by_id.get(master_key_id)
        if master is None:
            raise DecryptionError(f"master key {master_key_id} is not in the keyring")
        return open_sealed(master, wrapped, _subject_aad(subject_id), KEY_MAGIC)


def _subject_aad(subject_id: int) -> bytes:
    return f"subject:{subject_id}".encode()
