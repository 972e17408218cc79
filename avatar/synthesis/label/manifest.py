"""The sidecar provenance manifest: a JSON document signed with Ed25519 over the exact bytes
delivered (downloadable as FILE.manifest.json, kept with the generation's record). Inside the file
the same story is told by C2PA Content Credentials (content_credentials.py), which standard readers
read; this manifest is for checking a delivered file byte for byte. It names the generator, backend,
the subject's pseudonymous id, the consent id, the time, the content hash and the IPTC
"trainedAlgorithmicMedia" source type."""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
FORMAT = "avatar-manifest/1"


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The instance's signing key (PEM, 0600), created on first use."""
    path = Path(path)
    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    tmp.chmod(0o600)
    tmp.replace(path)
    return key


def public_key_b64(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes(serialization.Encoding.Raw,
                                                          serialization.PublicFormat.Raw)).decode()


def _canonical(claims: dict) -> bytes:
    return json.dumps(claims, sort_keys=True, separators=(",", ":")).encode()


def sign(key: Ed25519PrivateKey, content: bytes, **claims) -> dict:
    body = {"format": FORMAT, "digital_source_type": SOURCE_TYPE, "content_sha256": hashlib.sha256(content).hexdigest(),
            **claims}
    return {"claims": body, "signature": base64.b64encode(key.sign(_canonical(body))).decode(),
            "public_key": public_key_b64(key)}


def verify(manifest: dict, content: bytes, trusted_keys: list[str]) -> dict:
    """{"valid", "signature_ok", "content_matches", "trusted_key", "reason"}: valid only when a
    trusted key signed exactly these claims and the content hash is this file's."""
    out = {"valid": False, "signature_ok": False, "content_matches": False, "trusted_key": False, "reason": None}
    try:
        claims, sig, pub = manifest["claims"], base64.b64decode(manifest["signature"]), manifest["public_key"]
        if not isinstance(claims, dict) or not isinstance(pub, str):
            raise TypeError("claims must be an object")
        Ed25519PublicKey.from_public_bytes(base64.b64decode(pub)).verify(sig, _canonical(claims))
    except (KeyError, TypeError, ValueError, RecursionError, InvalidSignature):
        out["reason"] = "the signature does not verify"
        return out
    out["signature_ok"] = True
    out["trusted_key"] = pub in trusted_keys
    out["content_matches"] = claims.get("content_sha256") == hashlib.sha256(content).hexdigest()
    if not out["trusted_key"]:
        out["reason"] = "signed by a key this service does not know"
    elif not out["content_matches"]:
        out["reason"] = "the file was changed after it was signed"
    out["valid"] = out["trusted_key"] and out["content_matches"]
    return out
