"""Talking-head likeness: builds a likeness from VIDEO as if it were the enrollment recording (the
face reference chosen as enrollment chooses it, the audio as the voice), renders TEXT through the
offline speech and video backends with a grant minted for the benchmark, labels and watermarks it
as the product does, and measures the result and VIDEO itself the same way (avatar.analysis.talking_figures):

  python bench/bench_talking_head.py --clip VIDEO --text TEXT --out OUT [--backend offline]

writes OUT/avatar.mp4, OUT/strip.png (generated frames above frames of VIDEO) and OUT/report.json,
and prints the report as one JSON line. Bilabial phones come from Whisper word timings of each
clip's own audio spread over espeak-ng's phones (analysis.phones)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from _common import DATA, emit
from bench_synthesis import _grant

DEFAULT_CLIP = DATA / "talking" / "grid_s1_bbaf2n.mp4"
DEFAULT_TEXT = ("Please remember to bring the blue folder to the meeting, and maybe a map of the park. "
                "I will be back before five, so we can plan the trip together.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--text", default=DEFAULT_TEXT)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "talking_head")
    ap.add_argument("--backend", default="offline")
    args = ap.parse_args()
    if not args.clip.is_file():
        sys.exit(f"no such clip: {args.clip}")

    from avatar.analysis.challenge import best_frames
    from avatar.analysis.face import aligned_face, face_embedding
    from avatar.analysis.liveness import track
    from avatar.analysis.media import MediaFile, decode_clip
    from avatar.analysis.talking_figures import clip_figures, strip_png
    from avatar.synthesis.render import render_video
    from avatar.synthesis.speech.offline import OfflineSpeech
    from avatar.synthesis.video import get_backend
    from avatar.synthesis.video.example_based import footage_model

    args.out.mkdir(parents=True, exist_ok=True)
    with MediaFile(args.clip.read_bytes()) as mf:
        real, audio = mf.clip(25, max_side=512, need_audio=True)
    sig = track(real)
    # the frame enrollment keeps as the face reference; a clip filmed from the side (GRID s1 sits at
    # ~25 deg of yaw) has none, and then its sharpest frame with the mouth closed stands in
    best = best_frames(sig, 1) or sorted(
        (i for i, o in enumerate(sig.observations) if o is not None and o.mouth_open < 0.05),
        key=lambda i: -sig.observations[i].sharpness)[:1]
    if not best:
        sys.exit("no face with the mouth closed in the clip")
    k = best[0]
    face = aligned_face(real.images[k], sig.observations[k])
    reference = face_embedding(real.images[k], sig.observations[k])
    footage = args.clip.read_bytes()
    said = args.clip.with_suffix(".txt")  # the clip's transcript, where shared/data has one
    transcript = said.read_text() if said.is_file() else ""
    grant = _grant(audio, face, "video", footage)

    t0 = time.perf_counter()
    speech = OfflineSpeech().synthesize(grant, args.text)
    t_speech = time.perf_counter() - t0
    t = time.perf_counter()
    footage_model(footage, 512)  # what a worker builds once per likeness
    t_footage = time.perf_counter() - t
    t = time.perf_counter()
    generated = list(get_backend(args.backend).frames(grant, speech))
    t_frames = time.perf_counter() - t
    data = render_video(iter(generated), speech, "0badc0de", bytes(32))
    (args.out / "avatar.mp4").write_bytes(data)
    (args.out / "strip.png").write_bytes(strip_png(generated, real.images))

    out_frames, out_audio, _ = decode_clip(data, 25, max_side=512, need_audio=True)
    report = {"clip": str(args.clip), "backend": args.backend, "cpu_threads": os.cpu_count(),
              "speech_seconds": round(speech.seconds, 2), "speech_rtf": round(t_speech / speech.seconds, 3),
              "frames": len(generated), "size": generated[0].shape[0], "fps": round(len(generated) / t_frames, 1),
              "footage_analysis_seconds": round(t_footage, 2),
              "reference_frame": k, "generated": clip_figures(out_frames, out_audio, reference, text=args.text),
              "real": clip_figures(real, audio, reference, sig, text=transcript)}
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    emit("talking_head", report)


if __name__ == "__main__":
    main()
