"""How much a talking-head clip looks like real talking: figures measured the same way on real clips
(shared/data/talking/) and on generated ones (bench/bench_talking_head.py). Each takes the clip's
tracked face (liveness.track at the clip's frame rate) and, where it needs them, the audio and the
timed phones (analysis.phones)."""
from __future__ import annotations

import cv2
import numpy as np

from avatar.analysis.liveness import ClipSignals, frontal_frames, lip_sync, speech_envelope, spread, track
from avatar.analysis.media import Frames
from avatar.analysis.phones import BILABIAL, Phone, phone_times

INNER_LIPS = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95]
STABLE_POINTS = [10, 168, 6, 234, 454, 1]  # forehead, nose bridge, cheeks, nose tip: move with the head
OPEN_MOUTH = 0.15  # inner lip gap / mouth width: a mouth open enough to look inside
# Lips count as closed at a bilabial when the gap falls to this at some frame of the phone (±1 frame).
# On GRID s1's real clips (word timings from their .align files) the smallest gap at each of the 51
# bilabials is ≤ 0.008 in 90 % of them and every one is ≤ 0.08 (all closed): a tenfold margin.
CLOSED_MOUTH = 0.08


def inner_mouth_spread(frames: Frames, sig: ClipSignals) -> float | None:
    """Grey-level standard deviation inside the inner lips, averaged over open-mouth frames: a real
    mouth shows teeth, tongue and shadow (28–39 on real clips); a flat fill shows nothing."""
    spreads = []
    for img, obs in zip(frames.images, sig.observations):
        if obs is None or obs.mouth_open < OPEN_MOUTH:
            continue
        mask = np.zeros(img.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(obs.landmarks[INNER_LIPS, :2]).astype(np.int32)], 1)
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[mask > 0]
        if grey.size >= 20:
            spreads.append(float(grey.std()))
    return float(np.mean(spreads)) if spreads else None


def head_motion(sig: ClipSignals) -> float | None:
    """Spread of the head's position over the clip (standard deviation of the stable points'
    centre, x and y together), in face heights."""
    pts = [o.landmarks[STABLE_POINTS, :2].mean(0) for o in sig.observations if o is not None]
    heights = [o.box[3] - o.box[1] for o in sig.observations if o is not None]
    if len(pts) < 2:
        return None
    return float(np.linalg.norm(np.std(np.array(pts), axis=0)) / np.median(heights))


def lip_loudness_correlation(sig: ClipSignals, audio: np.ndarray, sr: int) -> float | None:
    """Pearson correlation of the lip gap with the speech loudness (dB), frame by frame. Real
    speech: low (lips close inside loud words, open in pauses); a mouth driven by loudness: ~0.9."""
    energy = speech_envelope(audio, sr, sig.times, win=0.06)
    ok = np.isfinite(sig.mouth_open) & np.isfinite(energy)
    if ok.sum() < 10 or np.std(sig.mouth_open[ok]) == 0:
        return None
    return float(np.corrcoef(sig.mouth_open[ok], energy[ok])[0, 1])


def bilabial_closure(sig: ClipSignals, phones: list[Phone]) -> dict:
    """Of the bilabial phones (m, b, p), how many have the lips closed at some frame of them."""
    step = float(np.median(np.diff(sig.times))) if len(sig.times) > 1 else 0.04
    closed = n = 0
    for p in phones:
        if p.phone not in BILABIAL:
            continue
        near = (sig.times >= p.start - step) & (sig.times <= p.end + step) & np.isfinite(sig.mouth_open)
        if not near.any():
            continue
        n += 1
        closed += bool(sig.mouth_open[near].min() <= CLOSED_MOUTH)
    return {"bilabials": n, "closed": closed, "ratio": round(closed / n, 3) if n else None}


def identity_distance(frames: Frames, sig: ClipSignals, reference: np.ndarray, samples: int = 5) -> float | None:
    """Median dlib distance of `samples` frontal frames spread over the clip to a reference template."""
    from avatar.analysis.face import face_distance, face_embedding

    idx = frontal_frames(sig)
    if not idx:
        return None
    picks = sorted(spread(idx, samples))
    return float(np.median([face_distance(reference, face_embedding(frames.images[i], sig.observations[i]))
                            for i in picks]))


def clip_figures(frames: Frames, audio16: np.ndarray, reference: np.ndarray | None = None,
                 sig: ClipSignals | None = None, text: str = "") -> dict:
    """All the figures above for one clip (frames, its 16 kHz audio; reference: a face template for
    the identity distance; sig: its track, if done; text: what it says, if known), rounded, as
    benchmarks and the demo report them. Bilabials are espeak-ng's phones spread over word timings:
    the text's words aligned to the clip's audio, or the words Whisper hears in it when no text is
    given (a misheard word then counts bilabials nobody said)."""
    # both load speech models (Whisper; pocketsphinx too): only when asked
    from avatar.analysis.speech_recognition import timed_words
    from avatar.analysis.word_alignment import aligned_words

    words = aligned_words(audio16, text) if text.strip() else timed_words(audio16)
    sig = sig if sig is not None else track(frames)
    out = {"frames": len(frames.images), "face_found": round(float(sig.present.mean()), 3),
           "inner_mouth_spread": inner_mouth_spread(frames, sig), "head_motion": head_motion(sig),
           "lip_loudness_correlation": lip_loudness_correlation(sig, audio16, 16000),
           "lip_sync": lip_sync(sig, audio16, 16000)["corr"],  # the capture's check: real people 0.22-0.76
           "bilabial_closure": bilabial_closure(sig, phone_times(words))}
    if reference is not None:
        out["identity_distance"] = identity_distance(frames, sig, reference)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def strip_png(generated: list[np.ndarray], real: list[np.ndarray], n: int = 5, size: int = 160) -> bytes:
    """A PNG of n frames of each clip, spread over it: generated above, real below."""
    def row(images):
        pick = [images[int(k * (len(images) - 1) / (n - 1))] for k in range(n)]
        return np.hstack([cv2.resize(im, (size, int(size * im.shape[0] / im.shape[1]))) for im in pick])

    top, bottom = row(generated), row(real)
    bottom = cv2.resize(bottom, (top.shape[1], int(bottom.shape[0] * top.shape[1] / bottom.shape[1])))
    ok, png = cv2.imencode(".png", cv2.cvtColor(np.vstack([top, bottom]), cv2.COLOR_RGB2BGR))
    return png.tobytes()
