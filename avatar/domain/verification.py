"""`avatar verify`, the verify page and POST /api/verify: is this file one of this installation's
outputs, which generation, is it revoked, and do its Content Credentials hold for exactly these bytes?

"Generated here" means one of three things, and nothing else: a watermark keyed with this
installation's watermark key names a generation recorded here; the file is byte for byte one this
installation delivered; or the file's C2PA Content Credentials (the one signed provenance record,
inside the file, bound to its exact bytes) are valid and signed under this installation's root
(read with c2pa-python, that root the only trust anchor). A mark or credentials that do not resolve
that way are reported as what they are, never as ours: changed content (Content Credentials that no longer match),
credentials stripped (the watermark still found), another signer (valid, but not under our root).
The AIGC implicit label (GB 45438) in the file's metadata is reported, and whether its signature
binds it to the watermark in the content.

Reading is bounded whatever the file claims: the first READ_SECONDS of picture and sound are
analysed one frame at a time (the marks repeat every 1.6 s), so a long upload costs no more than
a short one."""
from __future__ import annotations

import hashlib

import numpy as np
import sqlalchemy as sa

from avatar.store.models import Generation

READ_SECONDS = 30.0
MAX_FILE_SECONDS = 3600.0  # longer files are refused; shorter ones are read for READ_SECONDS only
VIDEO_FPS = 10
VIDEO_SIDE = 384
# A shorter file is read at up to its own frame rate (at most MAX_VIDEO_FPS) within the same number of
# frames, READ_SECONDS x VIDEO_FPS: a 3 s trim of our offline head (CRF 28) read at 10 fps kept its mark
# for 8 of 10 keys, read at 25 fps for 10 of 10 (confidence about 4.5 against 3.8)
MAX_VIDEO_FPS = 30.0


def read_marks(data: bytes, key: bytes) -> dict:
    """Watermarks of this installation found in the file's audio and video (either may be absent),
    and the text of its AIGC metadata field ("aigc", None when there is none)."""
    from avatar.analysis.media import Limits, MediaError, MediaFile

    try:
        with MediaFile(data, Limits(max_seconds=MAX_FILE_SECONDS, max_pixels=3840 * 2160)) as mf:
            return {**marks_in(mf, key), "aigc": mf.probe.tags.get("AIGC")}
    except MediaError as exc:
        return {"audio": None, "video": None, "aigc": None, "error": str(exc)}


def marks_in(mf, key: bytes) -> dict:
    """read_marks() on a file already open (a MediaFile): its first READ_SECONDS of picture and sound."""
    from avatar.analysis.media import SAMPLE_RATE
    from avatar.synthesis.label import audio_mark

    out = {"audio": None, "video": None}
    probe = mf.probe
    if probe.has_video and not probe.is_image:
        out["video"] = video_mark_in(mf, key)
    audio = mf.audio(seconds=READ_SECONDS) if probe.has_audio else None
    if audio is not None and audio.size:
        out["audio"] = audio_mark.detect(audio, SAMPLE_RATE, key)
    return out


def audio_mark_in(audio: np.ndarray, key: bytes) -> dict:
    """This installation's audio watermark in 16 kHz mono audio, as analysis.checks.speech_check
    takes it: {"found", "watermark_id", "confidence"}."""
    from avatar.analysis.media import SAMPLE_RATE
    from avatar.synthesis.label import audio_mark

    found = audio_mark.detect(audio, SAMPLE_RATE, key)
    return {"found": bool(found["found"]), "watermark_id": found.get("watermark_id"), "confidence": found.get("confidence")}


def video_mark_in(mf, key: bytes) -> dict:
    """The video watermark of a file already open (a MediaFile with a picture): its first
    READ_SECONDS at VIDEO_FPS (a shorter file faster: video_read_fps), scaled to VIDEO_SIDE, one frame
    at a time (video_mark.Reader)."""
    from avatar.synthesis.label import video_mark

    fps = video_read_fps(mf.probe)
    reader = video_mark.Reader(key)
    # however long the file claims to be, no more than READ_SECONDS x VIDEO_FPS frames
    for t, frame in mf.iter_frames(fps, max_side=VIDEO_SIDE, seconds=READ_SECONDS * VIDEO_FPS / fps):
        reader.add(frame, t)
    return reader.result()


def video_read_fps(probe) -> float:
    """The frame rate the video mark is read at: VIDEO_FPS over READ_SECONDS; a shorter file at up to
    its own frame rate (MAX_VIDEO_FPS at most), as many frames as READ_SECONDS at VIDEO_FPS."""
    seconds = probe.duration if probe.duration and probe.duration > 0 else READ_SECONDS
    native = min(probe.fps or VIDEO_FPS, MAX_VIDEO_FPS)
    return float(max(VIDEO_FPS, min(native, READ_SECONDS * VIDEO_FPS / seconds)))


def verify(session, data: bytes, watermark_key: bytes, c2pa_anchors: str | None, label_keys: list[str]) -> dict:
    """The report on one file (see the module doc). c2pa_anchors: the PEM roots whose Content
    Credentials count as this installation's (None: they are not read); label_keys: the public
    keys whose AIGC label signatures count as ours."""
    from avatar.synthesis.label import aigc
    from avatar.synthesis.label import content_credentials as cc

    marks = read_marks(data, watermark_key)
    found = [m for m in (marks["video"], marks["audio"]) if m and m["found"]]
    wm_id = found[0]["watermark_id"] if found else None
    gen = by_mark = session.scalar(sa.select(Generation).where(Generation.watermark_id == wm_id)) if wm_id else None
    credentials = cc.read(data, c2pa_anchors) if c2pa_anchors else None
    by_credentials = None
    if gen is None and credentials and credentials["ours"]:
        gen_id = (credentials["generation"] or {}).get("generation_id")
        gen = by_credentials = session.get(Generation, gen_id) if _an_id(gen_id) else None
    by_bytes = None
    if gen is None:  # the exact file we delivered, even where no mark is readable
        digest = hashlib.sha256(data).hexdigest()
        gen = by_bytes = session.scalar(sa.select(Generation).where(Generation.content_sha256 == digest))
    ours_by_credentials = bool(credentials and credentials["ours"])
    generated = by_mark is not None or by_bytes is not None or ours_by_credentials
    label = aigc.parse(marks.get("aigc"))
    bound_to = wm_id or (credentials or {}).get("watermark_id") or (gen.watermark_id if gen is not None else None)
    finding = _finding(by_mark, by_bytes, by_credentials, wm_id, credentials) + _cropped(marks["video"])
    return {
        "generated": generated,
        "finding": " ".join(x for x in (finding, _credentials_finding(credentials, gen)) if x),
        "generation_id": gen.id if gen is not None else None,
        "watermark": {"id": wm_id, **{k: v for k, v in marks.items() if k not in ("error", "aigc")}},
        "content_credentials": credentials,
        "aigc_label": {"present": label is not None, "label": label,
                       "bound": bool(label and aigc.bound(label, bound_to, label_keys))},
        "revoked": bool(gen is not None and gen.revoked_at is not None),
        **({"error": marks["error"]} if "error" in marks else {}),
    }


def _an_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2 ** 63


def _credentials_finding(credentials: dict | None, gen) -> str:
    """What the C2PA Content Credentials say, in one sentence (empty when they were not read)."""
    if credentials is None or not credentials.get("read", True):
        return ""  # not read, or a container the product never delivers (webm, …)
    if credentials.get("error"):
        return f"Its Content Credentials could not be read ({credentials['error']})."
    if not credentials["present"]:
        if gen is not None:
            return (f"Its C2PA Content Credentials have been stripped; the watermark still leads to generation "
                    f"{gen.id}.")
        return "It carries no C2PA Content Credentials."
    if credentials["state"] == "Invalid":
        codes = ", ".join(sorted({f["code"] for f in credentials["failures"] if f.get("code")})) or "invalid"
        return (f"Its Content Credentials no longer match the file: it was changed after it was signed ({codes}).")
    if credentials["ours"]:
        return "Its C2PA Content Credentials are valid and signed under this installation's root."
    return (f"It carries valid C2PA Content Credentials signed by someone else ({credentials['signer'] or 'unknown'}),"
            " not under this installation's root.")


def _cropped(video_mark: dict | None) -> str:
    """A second sentence when the picture's mark was read only after finding how it was cropped."""
    crop = (video_mark or {}).get("crop") if (video_mark or {}).get("found") else None
    if not crop:
        return ""
    cut = ", ".join(f"{round(100 * v)} % off the {side}" for side, v in crop.items() if v >= 0.01)
    return f" The picture has been cropped ({cut or 'a sliver'}) since it was made: e.g. its visible label cut off."


def _finding(by_mark, by_bytes, by_credentials, wm_id, credentials) -> str:
    """One sentence saying what was found, for the page, the API and the CLI alike."""
    if by_mark is not None:
        return f"This installation's watermark names generation {by_mark.id}, made here."
    if by_bytes is not None:
        return f"These are exactly the bytes of generation {by_bytes.id}, delivered here."
    if by_credentials is not None:
        return f"Content Credentials signed under this installation's root name generation {by_credentials.id}."
    if credentials and credentials["ours"]:
        return "Content Credentials signed under this installation's root name a generation no longer on record."
    if wm_id is not None:
        return ("A watermark keyed for this installation was read, but no generation here has its id "
                f"({wm_id}): not confirmed as made here.")
    return "No watermark or Content Credentials of this installation were found."


def own_output_in(session, mf, watermark_key: bytes) -> dict | None:
    """Does an upload (an enrollment recording, open as a MediaFile) carry this installation's
    watermark, i.e. is it, or does it contain, one of our outputs? {"watermark_id", "generation_id"
    (None when no generation here has that id), "found_in": ["video", "audio"]} or None."""
    found = {kind: m for kind, m in marks_in(mf, watermark_key).items() if m and m["found"]}
    if not found:
        return None
    return {**own_output_of_mark(session, next(iter(found.values()))), "found_in": sorted(found),
            "confidence": {k: m["confidence"] for k, m in found.items()}}


def own_output_of_mark(session, mark: dict) -> dict:
    """{"watermark_id", "generation_id"} of a found mark (generation_id None when no generation here
    has that id)."""
    gen = session.scalar(sa.select(Generation).where(Generation.watermark_id == mark["watermark_id"]))
    return {"watermark_id": mark["watermark_id"], "generation_id": gen.id if gen is not None else None}
