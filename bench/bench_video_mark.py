"""Video watermark against cropping: our renders of real footage (video/ and talking/ clips, squared
to 512 px, a random mark per clip) as delivered and after the edits that take the visible label off
(top band cut, 360 px, H.264 CRF 28-30), cuts from the sides and all around, a centre square;
and unmarked video (the 44 real clips) and video marked under another installation's key, which
must not read. Per variant: marks read with the right id, the alignment the crop search reached,
and seconds per read (what avatar.domain.verification.marks_in reads: VIDEO_FPS, VIDEO_SIDE,
READ_SECONDS). Prints JSON.

python bench/bench_video_mark.py [N_TALKING]   (default 6 of the 3 s talking/ clips besides video/)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from avatar.analysis.media import MediaFile  # noqa: E402
from avatar.domain.verification import READ_SECONDS, VIDEO_FPS, VIDEO_SIDE, video_mark_in  # noqa: E402
from avatar.synthesis.label import payload, video_mark  # noqa: E402
from avatar.synthesis.render import render_video  # noqa: E402
from avatar.synthesis.speech import OUTPUT_SR, Speech  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
KEY, OTHER = os.urandom(32), os.urandom(32)
# ffmpeg filters: what an attacker does to take the label off and pass the clip on
EDITS = {
    "label_band_cut_360_crf28": "crop=iw:ih-60:0:60,scale=360:-2",
    "label_band_cut_360_crf30": "crop=iw:ih-60:0:60,scale=360:-2",
    "top_and_bottom_cut": "crop=iw:ih-70:0:40,scale=480:-2",
    "left_cut_20pct": "crop=iw-100:ih:100:0,scale=400:-2",
    "top_and_sides_cut_360": "crop=iw-80:ih-60:40:60,scale=360:-2",
    "all_sides_8pct": "crop=iw-80:ih-80:40:40",
    "centre_16_9": "crop=iw:iw*9/16:0:(ih-iw*9/16)/2,scale=640:-2",
}


def squared(path: Path) -> list[np.ndarray]:
    with MediaFile(path.read_bytes()) as mf:
        frames = [f for _, f in mf.iter_frames(25, 720)]
    out = []
    for f in frames:
        h, w = f.shape[:2]
        s = min(h, w)
        y, x = (h - s) // 2, (w - s) // 2
        out.append(cv2.resize(f[y:y + s, x:x + s], (512, 512), interpolation=cv2.INTER_AREA))
    return out


def read(path: Path, key: bytes) -> tuple[dict, float]:
    t0 = time.perf_counter()
    with MediaFile(path.read_bytes()) as mf:
        result = video_mark_in(mf, key)
    return result, time.perf_counter() - t0


def edit(src: Path, out: Path, vf: str, crf: int) -> Path:
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-i", str(src), "-vf", vf, "-c:v", "libx264", "-crf", str(crf),
                    "-an", str(out)], check=True)
    return out


def main() -> None:
    n_talking = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    clips = sorted((DATA / "video").glob("*.mp4")) + sorted((DATA / "talking").glob("*.mp4"))[:n_talking]
    tmp = Path(tempfile.mkdtemp(prefix="avatar-vmark-"))
    rows: dict[str, list] = {name: [] for name in ["as_delivered", *EDITS, "other_installation"]}
    for k, clip in enumerate(clips):
        frames = squared(clip)
        silence = Speech(np.zeros(int(len(frames) / 25 * OUTPUT_SR), np.float32), OUTPUT_SR, backend="bench")
        wm = payload.new_watermark_id()
        ours = tmp / f"ours-{k}.mp4"
        ours.write_bytes(render_video(frames, silence, wm, KEY))
        foreign = tmp / f"foreign-{k}.mp4"
        foreign.write_bytes(render_video(frames, silence, wm, OTHER))
        variants = {"as_delivered": ours, "other_installation": foreign}
        for name, vf in EDITS.items():
            variants[name] = edit(ours, tmp / f"{name}-{k}.mp4", vf, 30 if name.endswith("crf30") else 28)
        for name, path in variants.items():
            result, seconds = read(path, KEY)
            rows[name].append({"clip": clip.name, "right_id": result["watermark_id"] == wm, "found": result["found"],
                               "alignment": result.get("alignment"), "crop": result.get("crop"),
                               "seconds": round(seconds, 2)})
        print(f"{k + 1}/{len(clips)} {clip.name}", file=sys.stderr, flush=True)
    unmarked = []
    for clip in sorted((DATA / "talking").glob("*.mp4")) + sorted((DATA / "video").glob("*.mp4")):
        result, seconds = read(clip, KEY)
        unmarked.append({"clip": clip.name, "found": result["found"], "alignment": result.get("alignment"),
                         "seconds": round(seconds, 2)})

    def summary(items: list[dict], marked: bool) -> dict:
        aligned = [i["alignment"] for i in items if i["alignment"] is not None]
        out = {"n": len(items), "found": sum(i["found"] for i in items),
               "alignment_min": min(aligned, default=None), "alignment_max": max(aligned, default=None),
               "seconds_max": max(i["seconds"] for i in items)}
        if marked:
            out["right_id"] = sum(i["right_id"] for i in items)
            out["missed"] = [i["clip"] for i in items if not i["right_id"]]
        return out

    print(json.dumps({
        "align_min": video_mark.ALIGN_MIN, "read": {"fps": VIDEO_FPS, "side": VIDEO_SIDE, "seconds": READ_SECONDS},
        "ours": {name: summary(items, name != "other_installation") for name, items in rows.items()},
        "unmarked_real_clips": summary(unmarked, False),
        "unmarked_alignment_top": sorted(((i["alignment"] or 0, i["clip"]) for i in unmarked), reverse=True)[:5],
    }, indent=1))


if __name__ == "__main__":
    main()
