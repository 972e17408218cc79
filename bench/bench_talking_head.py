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

import numpy as np
from _common import DATA, emit
from bench_synthesis import _grant

DEFAULT_CLIP = DATA / "talking" / "grid_s1_bbaf2n.mp4"
DEFAULT_TEXT = ("Please remember to bring the blue folder to the meeting, and maybe a map of the park. "
                "I will be back before five, so we can plan the trip together.")


def figures(frames, audio16: np.ndarray, reference: np.ndarray | None, sig=None) -> dict:
    """The talking_figures of one clip (frames at 25 fps, its 16 kHz audio; sig: its track, if done)."""
    from avatar.analysis import talking_figures as tf
    from avatar.analysis.liveness import track
    from avatar.analysis.phones import phone_times
    from avatar.analysis.speech_recognition import timed_words

    sig = sig if sig is not None else track(frames)
    out = {"frames": len(frames.images), "face_found": round(float(sig.present.mean()), 3),
           "inner_mouth_spread": tf.inner_mouth_spread(frames, sig), "head_motion": tf.head_motion(sig),
           "lip_loudness_correlation": tf.lip_loudness_correlation(sig, audio16, 16000),
           "bilabial_closure": tf.bilabial_closure(sig, phone_times(timed_words(audio16)))}
    if reference is not None:
        out["identity_distance"] = tf.identity_distance(frames, sig, reference)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def strip(generated, real, out: Path, n: int = 5, size: int = 160) -> None:
    """n frames of each, spread over the clip, generated above real."""
    import cv2

    def row(images):
        pick = [images[int(k * (len(images) - 1) / (n - 1))] for k in range(n)]
        return np.hstack([cv2.resize(im, (size, int(size * im.shape[0] / im.shape[1]))) for im in pick])

    top, bottom = row(generated), row(real)
    bottom = cv2.resize(bottom, (top.shape[1], int(bottom.shape[0] * top.shape[1] / bottom.shape[1])))
    cv2.imwrite(str(out), cv2.cvtColor(np.vstack([top, bottom]), cv2.COLOR_RGB2BGR))


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
    strip(generated, real.images, args.out / "strip.png")

    out_frames, out_audio, _ = decode_clip(data, 25, max_side=512, need_audio=True)
    report = {"clip": str(args.clip), "backend": args.backend, "cpu_threads": os.cpu_count(),
              "speech_seconds": round(speech.seconds, 2), "speech_rtf": round(t_speech / speech.seconds, 3),
              "frames": len(generated), "size": generated[0].shape[0], "fps": round(len(generated) / t_frames, 1),
              "footage_analysis_seconds": round(t_footage, 2),
              "reference_frame": k, "generated": figures(out_frames, out_audio, reference),
              "real": figures(real, audio, reference, sig)}
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    emit("talking_head", report)


if __name__ == "__main__":
    main()
