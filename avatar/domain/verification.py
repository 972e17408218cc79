"""`avatar verify`: is this file one of our outputs, which generation, is it revoked, and does its
signed manifest hold for exactly these bytes?"""
from __future__ import annotations

import hashlib

import sqlalchemy as sa

from avatar.store.models import Generation


def read_marks(data: bytes) -> dict:
    """Watermarks found in the file's audio and video (either may be absent)."""
    from avatar.analysis.media import Limits, MediaError, MediaFile
    from avatar.synthesis.label import audio_mark, video_mark

    out = {"audio": None, "video": None}
    try:
        with MediaFile(data, Limits(max_seconds=600, max_pixels=3840 * 2160)) as mf:
            probe = mf.probe
            if probe.has_video and not probe.is_image:
                frames, audio = mf.clip(10, max_side=640)
                out["video"] = video_mark.detect(frames.images, frames.times)
            else:
                audio = mf.audio() if probe.has_audio else None
            if audio is not None and audio.size:
                out["audio"] = audio_mark.detect(audio, 16000)
    except MediaError as exc:
        out["error"] = str(exc)
    return out


def verify(session, data: bytes, trusted_keys: list[str], manifest: dict | None = None) -> dict:
    from avatar.synthesis.label import manifest as manifests

    marks = read_marks(data)
    found = [m for m in (marks["video"], marks["audio"]) if m and m["found"]]
    wm_id = found[0]["watermark_id"] if found else None
    gen = session.scalar(sa.select(Generation).where(Generation.watermark_id == wm_id)) if wm_id else None
    if gen is None and manifest is None:  # the exact file we delivered, even where no mark is readable
        digest = hashlib.sha256(data).hexdigest()
        gen = session.scalar(sa.select(Generation).where(Generation.content_sha256 == digest))
    check = None
    if manifest is None and gen is not None:
        manifest = gen.manifest
    if manifest is not None:
        check = manifests.verify(manifest, data, trusted_keys)
        if gen is None and check["signature_ok"] and check["trusted_key"]:
            gen = session.get(Generation, manifest["claims"].get("generation_id"))
    return {
        "generated": bool(found) or bool(check and check["valid"]),
        "generation_id": gen.id if gen is not None else None,
        "watermark": {"id": wm_id, **{k: v for k, v in marks.items() if k != "error"}},
        "manifest_valid": bool(check and check["valid"]),
        "manifest": check,
        "revoked": bool(gen is not None and gen.revoked_at is not None),
        **({"error": marks["error"]} if "error" in marks else {}),
    }
