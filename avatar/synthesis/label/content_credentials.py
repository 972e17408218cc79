"""C2PA Content Credentials inside every output (MP4 and WAV), signed offline with c2pa-python.

What the manifest says (one provenance story, readable by any C2PA reader):
- `c2pa.actions`: c2pa.created, digitalSourceType trainedAlgorithmicMedia (IPTC), softwareAgent avatar;
- `org.avatar.generation`: the generation id, the consent it was made under, the subject's
  pseudonym, modality, purpose and backend (no name, no biometric data);
- `c2pa.soft-binding`: our watermark id (alg org.avatar.watermark.v1), so that a copy whose manifest
  was stripped or re-encoded away still leads back to its record through the mark in its content.

Signing: an ES256 certificate issued by the instance's own root (both generated into the instance
folder on first use, keys 0600), or, in a deployment, a certificate chain, key and trust anchors
given by AVATAR_C2PA_CERT / AVATAR_C2PA_KEY / AVATAR_C2PA_TRUST_ANCHORS (e.g. a publicly trusted
document-signing certificate). Reading: the instance's anchors alone are trusted (trust_anchors
replaces the SDK's built-in list), so "Trusted" means signed under this installation's root; a
valid signature under any other root reads as someone else's. Nothing is fetched from the network
while reading (remote manifests and OCSP off): a hostile file cannot make the server call out."""
from __future__ import annotations

import datetime
import io
import os
from dataclasses import dataclass
from pathlib import Path

GENERATION_ASSERTION = "org.avatar.generation"
SOFT_BINDING_ALG = "org.avatar.watermark.v1"
SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
MIME_TYPES = ("video/mp4", "audio/wav")
ROOT_DAYS, SIGNER_DAYS = 3650, 825
ROOT_CERT, ROOT_KEY = "c2pa-root.pem", "c2pa-root.key"
SIGNER_CERT, SIGNER_KEY = "c2pa-signer.pem", "c2pa-signer.key"
_OFFLINE = {"remote_manifest_fetch": False, "ocsp_fetch": False}


class CredentialsError(Exception):
    """The signing credentials are missing or unusable, or signing failed; the message says which."""


@dataclass(frozen=True)
class Credentials:
    chain_pem: str  # the signing certificate first, then any intermediates
    key_pem: str  # its private key (PKCS#8 PEM)
    anchors_pem: str  # the roots whose signatures count as this installation's


def _name(common_name: str, organization: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)])


def _key_usage(sign: bool):
    from cryptography import x509

    return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=not sign, crl_sign=not sign,
                         encipher_only=False, decipher_only=False)


def _pem(cert) -> str:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def issue_root(organization: str) -> tuple[str, str]:
    """A new self-signed P-256 root CA: (certificate PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"{organization} Content Credentials root", organization)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=ROOT_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(sign=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return _pem(cert), _key_pem(key)


def issue_signer(root_cert_pem: str, root_key_pem: str, organization: str) -> tuple[str, str]:
    """A new ES256 signing certificate under the root, with what C2PA asks of a signer
    (digitalSignature, the emailProtection EKU, subject and authority key identifiers)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    root = x509.load_pem_x509_certificate(root_cert_pem.encode())
    root_key = serialization.load_pem_private_key(root_key_pem.encode(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(f"{organization} generator", organization))
            .issuer_name(root.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(min(now + datetime.timedelta(days=SIGNER_DAYS), root.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(sign=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    return _pem(cert), _key_pem(key)


def _write_private(path: Path, text: str) -> None:
    """A new file only its owner reads (0600), written whole or not at all."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _ensure_root(folder: Path, organization: str) -> None:
    """The instance's own root certificate authority, created in `folder` on first use."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / ROOT_CERT).exists():
        cert, key = issue_root(organization)
        _write_private(folder / ROOT_KEY, key)
        _write_private(folder / ROOT_CERT, cert)


def instance_credentials(folder: Path, organization: str) -> Credentials:
    """The instance's own root and signer (created in `folder` on first use, keys 0600)."""
    folder = Path(folder)
    if not (folder / SIGNER_CERT).exists():
        reissue_signer(folder, organization)
    return Credentials((folder / SIGNER_CERT).read_text(), (folder / SIGNER_KEY).read_text(),
                       (folder / ROOT_CERT).read_text())


def reissue_signer(folder: Path, organization: str) -> str:
    """A fresh signing key and certificate under the instance's root (the root made first if there
    is none; part of `avatar keys rotate`). Files signed before stay Trusted: the root is the anchor.
    Returns the new certificate's serial (hex)."""
    from cryptography import x509

    folder = Path(folder)
    _ensure_root(folder, organization)
    cert, key = issue_signer((folder / ROOT_CERT).read_text(), (folder / ROOT_KEY).read_text(), organization)
    _write_private(folder / SIGNER_KEY, key)
    _write_private(folder / SIGNER_CERT, cert)
    return format(x509.load_pem_x509_certificate(cert.encode()).serial_number, "x")


def mime_of(data: bytes) -> str | None:
    """The two containers the product delivers, by their first bytes."""
    if data[4:8] == b"ftyp":
        return "video/mp4"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    return None


def embed(data: bytes, mime: str, credentials: Credentials, *, generation: dict, watermark_id: str,
          service: str, version: str) -> bytes:
    """The file with its Content Credentials embedded. generation: the ids and choices it was made
    under ({"generation_id", "consent_id", "subject", "modality", "purpose", "backend"})."""
    import c2pa

    if mime not in MIME_TYPES:
        raise CredentialsError(f"no Content Credentials for {mime}")
    definition = {
        "claim_generator_info": [{"name": service, "version": version}],
        "title": f"{service} generation {generation.get('generation_id')}",
        "format": mime,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [{
                "action": "c2pa.created", "digitalSourceType": SOURCE_TYPE, "softwareAgent": {"name": service}}]}},
            {"label": GENERATION_ASSERTION, "data": generation},
            {"label": "c2pa.soft-binding", "data": {"alg": SOFT_BINDING_ALG, "blocks": [{"scope": {}, "value": watermark_id}]}},
        ],
    }
    settings = {"trust": {"trust_anchors": credentials.anchors_pem}, "verify": _OFFLINE}
    try:
        info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, credentials.chain_pem.encode(),
                                   credentials.key_pem.encode(), None)
        out = io.BytesIO()
        with c2pa.Context.from_dict(settings) as ctx, c2pa.Signer.from_info(info) as signer, \
                c2pa.Builder(definition, ctx) as builder:
            builder.sign(signer, mime, io.BytesIO(data), out)
    except c2pa.C2paError as exc:
        raise CredentialsError(f"Content Credentials could not be signed: {exc}") from exc
    return out.getvalue()


def _reader_output(data: bytes, anchors_pem: str):
    """(state, validation results, active manifest) of a file with Content Credentials, None for a
    file without; raises c2pa.C2paError or JSONDecodeError on a damaged file or manifest."""
    import c2pa

    with c2pa.Context.from_dict({"trust": {"trust_anchors": anchors_pem}, "verify": _OFFLINE}) as ctx:
        reader = c2pa.Reader.try_create(mime_of(data), io.BytesIO(data), context=ctx)
        if reader is None:
            return None
        with reader:
            return (reader.get_validation_state(), reader.get_validation_results() or {},
                    reader.get_active_manifest() or {})


def active_manifest(data: bytes, anchors_pem: str) -> dict | None:
    """The active manifest of a file the product delivered, as a C2PA reader prints it (claim
    generator, signature info, assertions) with its validation state: what the generation's
    `manifest.json` download shows. None when the file carries none."""
    if mime_of(data) is None:
        return None
    found = _reader_output(data, anchors_pem)
    if found is None:
        return None
    state, _, manifest = found
    return {"validation_state": state, **manifest}


def generation_of(manifest: dict) -> dict | None:
    """The org.avatar.generation assertion of an active manifest (as active_manifest() gives it)."""
    return next((a.get("data") for a in manifest.get("assertions") or []
                 if isinstance(a, dict) and a.get("label") == GENERATION_ASSERTION), None)


def read(data: bytes, anchors_pem: str) -> dict:
    """What a file's Content Credentials say, judged with anchors_pem as the only trusted roots:
    {"present", "state" (Trusted, Valid, Invalid or None), "ours", "signer", "source_type",
    "generation", "watermark_id", "failures" ([{"code", "explanation"}]), "error" (unreadable),
    "read": False for a container other than the MP4 and WAV the product delivers (not looked into)}."""
    import json

    import c2pa

    out = {"present": False, "state": None, "ours": False, "signer": None, "source_type": None,
           "generation": None, "watermark_id": None, "failures": [], "read": True}
    if mime_of(data) is None:
        return {**out, "read": False}
    try:
        found = _reader_output(data, anchors_pem)
    except (c2pa.C2paError, json.JSONDecodeError) as exc:  # a damaged file or manifest
        return {**out, "error": f"the Content Credentials cannot be read: {exc}"}
    if found is None:
        return out
    state, results, manifest = found
    signature = manifest.get("signature_info") or {}
    assertions = {a.get("label"): a.get("data") for a in manifest.get("assertions") or [] if isinstance(a, dict)}
    actions = (assertions.get("c2pa.actions.v2") or assertions.get("c2pa.actions") or {}).get("actions") or []
    binding = assertions.get("c2pa.soft-binding") or {}
    blocks = binding.get("blocks") or [] if binding.get("alg") == SOFT_BINDING_ALG else []
    failures = (results.get("activeManifest") or {}).get("failure") or []
    return {**out, "present": True, "state": state, "ours": state == "Trusted",
            "signer": ", ".join(str(signature[k]) for k in ("common_name", "issuer") if signature.get(k)) or None,
            "source_type": next((a.get("digitalSourceType") for a in actions if a.get("action") == "c2pa.created"), None),
            "generation": assertions.get(GENERATION_ASSERTION),
            "watermark_id": next((str(b.get("value")) for b in blocks if isinstance(b, dict) and b.get("value")), None),
            "failures": [{"code": f.get("code"), "explanation": f.get("explanation")} for f in failures][:10]}
