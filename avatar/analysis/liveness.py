"""Liveness signals over a clip: face time series, discrete events, identity consistency,
audio-visual sync, and passive presentation-attack cues.

Sampling: frames are decoded at SAMPLE_FPS (10 fps: at 8 fps a blink of d12 falls between
samples) and are tracked with one mediapipe mesh per clip; dlib identity runs on the first and last
frontal frames plus the frame after every jump of the tracked face (a splice); the planarity cue
runs on PLANAR_PAIRS frame pairs at half resolution, in parallel with the identity check.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from avatar.analysis.face import (
    FACE_MATCH_THRESHOLD,
    FaceObservation,
    face_distance,
    face_embedding,
    find_faces,
    get_face_models,
    observe,
    observe_in_region,
)
from avatar.analysis.media import Frames

SAMPLE_FPS = 10.0
PLANAR_FACE_PX = 160
# A face under this share of the frame height is meshed inside a region around it: mediapipe's mesh
# finds no face in 18 of 44 real clips placed in a 1280×720 framing with the face at 20 % of the
# height (decoded at 640×360, the face is 72 px), and all of them in its region.
SMALL_FACE = 0.3
FINDER_EVERY = 5
PLANAR_PAIRS = 16
# planar_residual(): how far the mouth moves apart from the plane of the face. Real people, 44 clips
# of talking/ and video/ (bench/bench_accuracy.py flat): in their own framing ≥ 16.8; placed in webcam
# framings (640×480 and 1280×720, face 20–40 % of the height, noise, H.264 CRF 28) ≥ 11.8 (0/220
# taken for flat). The stills' attacks (panned, zoomed, shaken, printed) ≤ 6.0; photos of the clips
# held to a webcam: panned ≤ 7.0, shaken ≤ 10.3, tilted fast like a print 28/30 below (13.3 and 11.8
# pass this cue alone). Up to 1.25× the threshold, reviewers see the capture flagged as borderline.
PLANAR_RESIDUAL_MIN = 11.5
FROZEN_MAX = 0.95  # real webcam clips repeat many frames (d19: 76% at 10 fps); only a frozen picture fails
HUMAN_FACE_MIN = 0.25  # dlib HOG frontal score on the face crop; dog: none, monkey: 0.2, people: ≥ 0.5
# 90th percentile over face crops of the strongest fine periodic component above its spectral
# neighbourhood (natural log): the 9 shared clips, also re-encoded down to 200 kbit/s, ≤ 1.53; the
# 26 face photos and stills ≤ 1.76; a screen's moiré of 4–8 % contrast 2.2–3.6 (bench/bench_attacks.py)
SCREEN_PATTERN_MAX = 2.0
MIN_PRESENT = 0.8
TURN_DEG = 18.0
PITCH_DEG = 10.0
MOUTH_OPEN = 0.35


@dataclass
class Event:
    kind: str  # blink, turn_left, turn_right, look_up, look_down, mouth_open, smile
    start: float
    end: float
    peak: float  # value at the extreme (degrees, ratio)

    def as_dict(self) -> dict:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass
class ClipSignals:
    times: np.ndarray
    present: np.ndarray  # bool per sampled frame
    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    eye_open: np.ndarray
    mouth_open: np.ndarray
    smile: np.ndarray
    face_size: np.ndarray
    faces_in_frame: np.ndarray
    observations: list[FaceObservation | None] = field(repr=False, default_factory=list)

    @property
    def present_ratio(self) -> float:
        return float(self.present.mean()) if len(self.present) else 0.0

    def series(self) -> dict[str, list]:
        """JSON-ready time series for the evidence page."""
        def clean(a):
            return [None if not np.isfinite(v) else round(float(v), 4) for v in a]

        return {"t": clean(self.times), "yaw": clean(self.yaw), "pitch": clean(self.pitch),
                "eye_open": clean(self.eye_open), "mouth_open": clean(self.mouth_open), "smile": clean(self.smile)}


def face_region(frames: Frames) -> tuple[tuple[int, int, int, int] | None, dict[int, int]]:
    """Where to mesh a small face, and how many faces the full-range finder sees.

    The finder runs on every FINDER_EVERY-th frame. When the face is under SMALL_FACE of the frame
    height, the region is every place it went plus one face height around it (the mesh then sees
    it as if the camera had zoomed in); otherwise None (the whole frame). The counts, by frame
    index, hold the faces at least half the size of the largest (people, not posters far behind)."""
    counts: dict[int, int] = {}
    boxes = []
    for i in range(0, len(frames), FINDER_EVERY):
        found = find_faces(frames.images[i])
        if found:
            top = found[0][3] - found[0][1]
            counts[i] = sum((b[3] - b[1]) >= 0.5 * top for b in found)
            boxes.append(found[0])
    if not boxes:
        return None, counts
    h, w = frames.images[0].shape[:2]
    size = float(np.median([b[3] - b[1] for b in boxes]))
    if size >= SMALL_FACE * h:
        return None, counts
    x0, y0 = min(b[0] for b in boxes) - size, min(b[1] for b in boxes) - size
    x1, y1 = max(b[2] for b in boxes) + size, max(b[3] for b in boxes) + size
    return (int(max(0, x0)), int(max(0, y0)), int(min(w, x1)), int(min(h, y1))), counts


def track(frames: Frames, max_faces: int = 2) -> ClipSignals:
    """Face signals for every frame (NaN where no face), with one tracking mesh for the clip; a
    small face is meshed inside its region (face_region). max_faces=1 for frames known to hold one
    face (faces_in_frame then counts no second person)."""
    models = get_face_models()
    region, counts = face_region(frames) if len(frames) else (None, {})
    mesh = models.video_mesh(max_faces)
    try:
        if region is None:
            obs = [observe(img, mesh.process(img)) for img in frames.images]
        else:
            obs = [observe_in_region(img, region, mesh, counts.get(i - i % FINDER_EVERY, 0))
                   for i, img in enumerate(frames.images)]
    finally:
        mesh.close()
    n = len(obs)

    def arr(fn):
        return np.array([fn(o) if o is not None else np.nan for o in obs], dtype=np.float64)

    return ClipSignals(
        times=np.asarray(frames.times, dtype=np.float64), present=np.array([o is not None for o in obs], bool),
        yaw=arr(lambda o: o.yaw), pitch=arr(lambda o: o.pitch), roll=arr(lambda o: o.roll),
        eye_open=arr(lambda o: o.eye_open), mouth_open=arr(lambda o: o.mouth_open), smile=arr(lambda o: o.smile),
        face_size=arr(lambda o: o.size), faces_in_frame=np.array([o.faces_in_frame if o else 0 for o in obs] or [0])[:n],
        observations=obs,
    )


# -- events -----------------------------------------------------------------------------------
def true_runs(mask: np.ndarray, min_len: int = 1) -> list[tuple[int, int]]:
    """(start, end) index pairs (inclusive) of True runs at least min_len long."""
    runs, start = [], None
    for i, v in enumerate(list(mask) + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if i - start >= min_len:
                runs.append((start, i - 1))
            start = None
    return runs


def _baseline(x: np.ndarray, q: float = 50) -> float:
    v = x[np.isfinite(x)]
    return float(np.percentile(v, q)) if v.size else float("nan")


def detect_events(sig: ClipSignals) -> list[Event]:
    """Discrete actions with their times, relative to the clip's own neutral pose and eyes."""
    t = sig.times
    events: list[Event] = []
    if not sig.present.any():
        return events

    def add(kind, mask, values, pick, min_len=1):
        for a, b in true_runs(mask, min_len):
            seg = values[a: b + 1]
            events.append(Event(kind, float(t[a]), float(t[b]), float(pick(seg[np.isfinite(seg)]))))

    yaw0, pitch0 = _baseline(sig.yaw), _baseline(sig.pitch)
    add("turn_left", sig.yaw - yaw0 > TURN_DEG, sig.yaw, np.max)
    add("turn_right", sig.yaw - yaw0 < -TURN_DEG, sig.yaw, np.min)
    frontal = np.abs(sig.yaw - yaw0) < TURN_DEG  # pitch read on a turned head is unreliable
    add("look_up", (sig.pitch - pitch0 > PITCH_DEG) & frontal, sig.pitch, np.max)
    add("look_down", (sig.pitch - pitch0 < -PITCH_DEG) & frontal, sig.pitch, np.min)
    eyes_open = _baseline(sig.eye_open, 75)
    add("blink", (sig.eye_open < 0.6 * eyes_open) & (np.abs(sig.yaw - yaw0) < 30), sig.eye_open, np.min)
    add("mouth_open", sig.mouth_open > MOUTH_OPEN, sig.mouth_open, np.max)
    smile0 = _baseline(sig.smile, 25)
    add("smile", (sig.smile > 1.12 * smile0) & (sig.mouth_open < MOUTH_OPEN) & frontal, sig.smile, np.max)
    events.sort(key=lambda e: e.start)
    return events


# -- identity ---------------------------------------------------------------------------------
CHECK_FRAMES = 3  # frontal frames judged at each identity checkpoint (their median distance)
CHECK_SPAN = 0.6  # seconds after the checkpoint they are taken from
FRONTAL_YAW = 25  # degrees: a face turned less than this gives a usable dlib template


def frontal_frames(sig: ClipSignals) -> list[int]:
    """Indices of the frames whose face is turned less than FRONTAL_YAW."""
    return [i for i, o in enumerate(sig.observations) if o is not None and abs(o.yaw) < FRONTAL_YAW]


def spread(idx: list[int], samples: int) -> set[int]:
    """`samples` of idx evenly spread from its first to its last."""
    return {idx[int(round(k * (len(idx) - 1) / max(samples - 1, 1)))] for k in range(samples)}


def identity_consistency(frames: Frames, sig: ClipSignals, samples: int = 2) -> dict:
    """dlib templates of `samples` frontal frames spread over the clip, and of the frame after
    each jump of the tracked face; all must match the first. Between them the mesh tracker
    follows one face continuously (a cut would show as a jump). Each checkpoint is judged by the
    median distance of up to CHECK_FRAMES frontal frames from it on (within CHECK_SPAN): one
    frame of a laugh or a wide-open mouth gave an honest user 0.76 against ≤ 0.39 for the frames
    beside it, while a splice changes every frame after the cut."""
    idx = frontal_frames(sig)
    if not idx:
        return {"ok": False, "max_distance": None, "templates": []}
    picks = spread(idx, samples)
    # a splice (another person's footage cut in) shows as a jump of the tracked face: check there too
    for cut in face_jumps(sig)[:4]:
        after = [i for i in idx if i >= cut]
        if after:
            picks.add(after[0])
    picks = sorted(picks)
    span = max(1, int(round(CHECK_SPAN * SAMPLE_FPS)))
    templates, dists = [], []
    for n, p in enumerate(picks):
        near = [i for i in idx if p <= i < p + span][:CHECK_FRAMES]
        group = [face_embedding(frames.images[i], sig.observations[i]) for i in near]
        templates.append(group[0])
        if n:
            dists.append(float(np.median([face_distance(templates[0], t) for t in group])))
    worst = max(dists) if dists else 0.0
    return {"ok": worst < FACE_MATCH_THRESHOLD, "max_distance": round(worst, 4), "frames": picks,
            "templates": templates}


def face_jumps(sig: ClipSignals) -> list[int]:
    """Sample indices where the tracked face jumps (moves > 35 % of its size or changes size by
    > 40 % between neighbouring samples, or reappears after a gap): candidate splices."""
    jumps, prev = [], None
    for i, o in enumerate(sig.observations):
        if o is None:
            continue
        if prev is not None:
            p = sig.observations[prev]
            c0 = np.array([(p.box[0] + p.box[2]) / 2, (p.box[1] + p.box[3]) / 2])
            c1 = np.array([(o.box[0] + o.box[2]) / 2, (o.box[1] + o.box[3]) / 2])
            size = max(p.size, 1)
            if i - prev > 2 or np.linalg.norm(c1 - c0) > 0.35 * size or not 0.7 < o.size / size < 1.4:
                jumps.append(i)
        prev = i
    return jumps


# -- audio-visual sync ------------------------------------------------------------------------
def speech_envelope(audio: np.ndarray, sr: int, times: np.ndarray, win: float = 0.1) -> np.ndarray:
    """RMS energy (dB) of the audio around each frame time."""
    half = int(win * sr / 2)
    out = np.empty(len(times))
    for k, t in enumerate(times):
        c = int(t * sr)
        seg = audio[max(0, c - half): c + half]
        out[k] = 10 * np.log10(np.mean(seg.astype(np.float64) ** 2) + 1e-10) if seg.size else -100.0
    return out


def av_sync(sig: ClipSignals, audio: np.ndarray, sr: int, max_lag: float = 0.3) -> dict:
    """Correlation of mouth opening with speech energy, at the best lag within ±max_lag s."""
    energy = speech_envelope(audio, sr, sig.times)
    m = sig.mouth_open.copy()
    ok = np.isfinite(m)
    if ok.sum() < 10 or np.std(energy[ok]) < 1e-6 or np.std(m[ok]) < 1e-6:
        return {"corr": 0.0, "lag": 0.0}
    m[~ok] = np.nanmedian(m)
    step = sig.times[1] - sig.times[0] if len(sig.times) > 1 else 1 / SAMPLE_FPS
    return _best_lagged_corr(m, energy, int(max_lag / step), step)


def _best_lagged_corr(mouth: np.ndarray, energy: np.ndarray, max_lag: int, step: float,
                      min_lag: int | None = None) -> dict:
    """The highest correlation of mouth with energy shifted by min_lag (default -max_lag) to max_lag
    samples of step s; a negative lag pairs the mouth with later sound."""
    best = (-1.0, 0.0)
    for lag in range(-max_lag if min_lag is None else min_lag, max_lag + 1):
        a, b = (mouth[lag:], energy[: len(energy) - lag]) if lag >= 0 else (mouth[:lag], energy[-lag:])
        if len(a) > 5 and np.std(a) > 0 and np.std(b) > 0:
            c = float(np.corrcoef(a, b)[0, 1])
            if c > best[0]:
                best = (c, lag * step)
    return {"corr": round(best[0], 3), "lag": round(best[1], 3)}


# Lip sync proper (lip_sync): the mouth tracked at SYNC_FPS over the statement. Any two readings share
# their coarse shape (speech, pause, speech), which is why av_sync could not tell a person's own audio
# from another's (talking/: ROC area 0.55); the syllable-scale changes that remain once a SYNC_HIGHPASS
# moving average is taken from both signals do (ROC area 0.91), if the lag stays within SYNC_MAX_LAG.
SYNC_FPS = 25.0
SYNC_HIGHPASS = 0.28  # seconds
SYNC_MAX_LAG = 0.04  # seconds: a webcam recording's sound and picture are this close
SYNC_VOICED_DB = 30  # the voiced span: from the first to the last frame within this of the loudest
# Sound that reaches the recording late (a wireless headset delays it by 0.1-0.2 s) fails lip_sync:
# on talking/ (35 real 3 s clips) with the sound moved 80 / 120 / 160 ms later, 18 / 31 / 25 are
# refused. The lag window is not widened for them (it would pass more dubbed speech, see
# challenge.AV_SYNC_MIN); instead, when the lips follow the sound well at a lag within LATE_SOUND
# (corr >= LATE_SOUND_MIN), the person is told their sound comes late: 15 / 26 / 21 of those refused.
LATE_SOUND = (0.08, 0.24)  # seconds the sound may trail the picture for that hint
LATE_SOUND_MIN = 0.3


def _highpass(x: np.ndarray, width: int) -> np.ndarray:
    return x - np.convolve(np.pad(x, width // 2, mode="edge"), np.ones(width) / width, "valid")[: len(x)]


def lip_sync(sig: ClipSignals, audio: np.ndarray, sr: int, lags: tuple[float, float] | None = None) -> dict:
    """Correlation of the mouth opening's syllable-scale changes with the speech energy's, over the
    voiced span of the audio, at the best lag within ±SYNC_MAX_LAG (sig at about SYNC_FPS), or
    within lags = (from, to) seconds (negative: the sound later than the picture)."""
    if len(sig.times) < 10:
        return {"corr": 0.0, "lag": 0.0}
    step = float(np.median(np.diff(sig.times)))
    energy = speech_envelope(audio, sr, sig.times, win=0.08)
    m = sig.mouth_open.copy()
    ok = np.isfinite(m)
    voiced = np.flatnonzero(energy > energy.max() - SYNC_VOICED_DB)
    if ok.sum() < 10 or voiced.size < 10:
        return {"corr": 0.0, "lag": 0.0}
    m[~ok] = np.interp(np.flatnonzero(~ok), np.flatnonzero(ok), m[ok])
    width = max(3, int(round(SYNC_HIGHPASS / step)) | 1)
    lo, hi = voiced[0], voiced[-1] + 1
    first, last = (-SYNC_MAX_LAG, SYNC_MAX_LAG) if lags is None else lags
    return _best_lagged_corr(_highpass(m, width)[lo:hi], _highpass(energy, width)[lo:hi],
                             int(round(last / step)), step, int(round(first / step)))


def late_sound(sig: ClipSignals, audio: np.ndarray, sr: int) -> dict | None:
    """For a mouth that failed lip_sync: {"corr", "lag"} when it follows the sound well once the sound
    is taken LATE_SOUND later (lag: how much later, seconds), else None. Only ever a hint: it never
    lets a recording pass."""
    found = lip_sync(sig, audio, sr, lags=(-LATE_SOUND[1], -LATE_SOUND[0]))
    if found["corr"] < LATE_SOUND_MIN:
        return None
    return {"corr": found["corr"], "lag": round(-found["lag"], 3)}


def mouth_track(frames: Iterable[tuple[float, np.ndarray]], sig: ClipSignals, t0: float,
                t1: float) -> ClipSignals | None:
    """The face's signals in frames (time, RGB; e.g. MediaFile.iter_frames at SYNC_FPS) between t0
    and t1, meshed in the region the face takes in sig (the SAMPLE_FPS track) there: only that crop
    of each frame is kept. None when sig has no face in the window. The crop is meshed for one face
    (who else is in the frame is sig's to count): on the test captures and real clips the mouth
    signals are the same as with two, in two thirds of the time."""
    boxes = np.array([o.box for o, t in zip(sig.observations, sig.times) if o is not None and t0 <= t <= t1])
    if not len(boxes):
        return None
    x0, y0 = boxes[:, :2].min(0)
    x1, y1 = boxes[:, 2:].max(0)
    pad = int(0.25 * max(x1 - x0, y1 - y0))
    images, times = [], []
    for t, frame in frames:
        if t < t0:
            continue
        if t > t1:
            break
        h, w = frame.shape[:2]
        crop = frame[max(0, y0 - pad): min(h, y1 + pad), max(0, x0 - pad): min(w, x1 + pad)]
        images.append(np.ascontiguousarray(crop))
        times.append(t)
    return track(Frames(images=images, times=np.array(times), fps=SYNC_FPS), max_faces=1) if images else None


# -- presentation-attack cues -----------------------------------------------------------------
def _face_pair(frames: Frames, sig: ClipSignals, i: int, j: int) -> tuple[np.ndarray, np.ndarray, tuple, tuple]:
    """Grey crops of frames i and j around both faces, scaled so the face in i is PLANAR_FACE_PX
    high, and the two face boxes in crop coordinates."""
    oi, oj = sig.observations[i], sig.observations[j]
    s = PLANAR_FACE_PX / max(oi.box[3] - oi.box[1], 1)
    m = 0.3 * (oi.box[3] - oi.box[1])
    h, w = frames.images[i].shape[:2]
    x0, y0 = int(max(0, min(oi.box[0], oj.box[0]) - m)), int(max(0, min(oi.box[1], oj.box[1]) - m))
    x1, y1 = int(min(w, max(oi.box[2], oj.box[2]) + m)), int(min(h, max(oi.box[3], oj.box[3]) + m))
    size = (max(8, int((x1 - x0) * s)), max(8, int((y1 - y0) * s)))
    interpolation = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC

    def grey(k):
        return cv2.cvtColor(cv2.resize(frames.images[k][y0:y1, x0:x1], size, interpolation=interpolation),
                            cv2.COLOR_RGB2GRAY)

    def box(o):
        return tuple(int((v - off) * s) for v, off in zip(o.box, (x0, y0, x0, y0)))

    return grey(i), grey(j), box(oi), box(oj)


def _landmark_homography(sig: ClipSignals, i: int, j: int, bi: tuple, bj: tuple) -> np.ndarray | None:
    """The homography taking the mesh of frame i onto that of frame j, in the crop coordinates of
    _face_pair (boxes bi, bj place the faces there)."""
    oi, oj = sig.observations[i], sig.observations[j]

    def in_crop(o, b):
        s = (b[2] - b[0]) / max(o.box[2] - o.box[0], 1)
        return ((o.landmarks[:, :2] - np.array(o.box[:2], np.float32)) * s + np.array(b[:2], np.float32))

    H, _ = cv2.findHomography(in_crop(oi, bi).astype(np.float32), in_crop(oj, bj).astype(np.float32), cv2.RANSAC, 3.0)
    return H


def planar_residual(frames: Frames, sig: ClipSignals, pairs: int = PLANAR_PAIRS) -> float | None:
    """How much the mouth moves apart from the plane of the face (None if unmeasurable).

    For frame pairs 0.3–2 s apart, both faces are cropped at one scale (the face PLANAR_FACE_PX
    high, whatever the framing), corner features inside the face are tracked (Lucas–Kanade), a
    homography is fitted (RANSAC), the earlier crop is warped onto the later one, and the 90th
    percentile of the grey-level difference is taken in the mouth's ninth of the face (lower
    third, middle third). The figure is the 75th percentile over the pairs. A photo, print or
    replayed still moves as one plane however it is held: its mouth stays at noise level. A live
    face speaks, opens its mouth and smiles when prompted: its mouth does not follow the plane.
    """
    idx = [i for i, p in enumerate(sig.present) if p]
    present = set(idx)
    lags = sorted({int(round(SAMPLE_FPS * s)) for s in (0.3, 0.5, 1.0, 2.0)})
    cand = [(i, i + lag) for i in idx for lag in lags if i + lag in present]
    if not cand:
        return None
    step = max(1, len(cand) // pairs)
    residuals = []
    for i, j in cand[::step][:pairs]:
        gi, gj, bi, bj = _face_pair(frames, sig, i, j)
        mask = np.zeros_like(gi)
        mask[bi[1]:bi[3], bi[0]:bi[2]] = 255
        pts = cv2.goodFeaturesToTrack(gi, 150, 0.005, 3, mask=mask)
        if pts is None or len(pts) < 12:
            continue
        # the mesh's landmarks give the large motion (a print tilted fast, a head turned), the
        # tracked corners the exact one
        mesh_motion = _landmark_homography(sig, i, j, bi, bj)
        guess = pts.copy() if mesh_motion is None else cv2.perspectiveTransform(pts, mesh_motion)
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(gi, gj, pts, guess, winSize=(15, 15), maxLevel=3,
                                              flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
        st = st.ravel() == 1
        if st.sum() < 12:
            continue
        H, _ = cv2.findHomography(pts[st], nxt[st], cv2.RANSAC, 1.0)
        if H is None:
            continue
        warped = cv2.warpPerspective(gi, H, (gi.shape[1], gi.shape[0]))
        X0, Y0, X1, Y1 = bj
        dx, dy = (X1 - X0) // 8, (Y1 - Y0) // 8
        diff = np.abs(warped[Y0 + dy:Y1 - dy, X0 + dx:X1 - dx].astype(np.float32)
                      - gj[Y0 + dy:Y1 - dy, X0 + dx:X1 - dx])
        h3, w3 = diff.shape[0] // 3, diff.shape[1] // 3
        mouth = diff[2 * h3:3 * h3, w3:2 * w3]
        if mouth.size >= 16:
            residuals.append(float(np.percentile(mouth, 90)))
    return float(np.percentile(residuals, 75)) if residuals else None


def identity_and_planarity(frames: Frames, sig: ClipSignals) -> tuple[dict, float | None]:
    """identity_consistency() and planar_residual() of a clip, the dlib identity work running in
    a thread while OpenCV (which releases the GIL) measures planarity."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        identity_job = pool.submit(identity_consistency, frames, sig)
        planar = planar_residual(frames, sig)
        return identity_job.result(), planar


def frozen_ratio(frames: Frames) -> float:
    """Share of consecutive sampled frames that are identical (a frozen or looped picture)."""
    if len(frames) < 2:
        return 1.0
    small = [cv2.resize(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), (64, 64), interpolation=cv2.INTER_AREA).astype(np.int16)
             for im in frames.images]
    same = [np.abs(a - b).mean() < 0.5 for a, b in zip(small, small[1:])]
    return float(np.mean(same))


def spectral_peak(gray: np.ndarray) -> float:
    """How far the strongest fine periodic component of an image stands above its neighbourhood in
    the spectrum (natural log of the ratio). Skin and hair have no regular texture; a screen filmed
    by a camera adds one (moiré: its pixel grid beating with the sensor's). Compression blocks and
    noise spread over the spectrum and stay low."""
    g = gray.astype(np.float32)
    g = g - cv2.GaussianBlur(g, (0, 0), 3)  # fine texture only
    h, w = g.shape
    spectrum = np.log(np.abs(np.fft.fft2(g * np.outer(np.hanning(h), np.hanning(w)).astype(np.float32))) + 1e-3)
    spectrum = np.fft.fftshift(spectrum).astype(np.float32)
    fy, fx = np.fft.fftshift(np.fft.fftfreq(h))[:, None], np.fft.fftshift(np.fft.fftfreq(w))[None, :]
    radius = np.sqrt(fx ** 2 + fy ** 2)
    band = (radius > 0.08) & (radius < 0.48)  # periods of 2–12 px
    return float((spectrum - cv2.blur(spectrum, (9, 9)))[band].max())


def screen_pattern(frames: Frames, sig: ClipSignals, every: int = 3, min_px: int = 48) -> float | None:
    """90th percentile of spectral_peak() over the face crops of every `every`-th sampled frame
    (None when no face crop is large enough)."""
    peaks = []
    for i in range(0, len(sig.observations), every):
        o = sig.observations[i]
        if o is None:
            continue
        x0, y0, x1, y1 = o.box
        crop = frames.images[i][max(0, y0):y1, max(0, x0):x1]
        if min(crop.shape[:2]) >= min_px:
            peaks.append(spectral_peak(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)))
    return float(np.percentile(peaks, 90)) if peaks else None


def human_face_score(rgb: np.ndarray, obs: FaceObservation) -> float:
    """dlib's HOG frontal-face score on the face crop scaled to 160 px (−1 when it finds none).

    Mediapipe's mesh fits almost anything face-like (it meshes a dog); dlib's HOG detector,
    trained on human faces, does not fire on the animals in the shared stills."""
    models = get_face_models()
    x0, y0, x1, y1 = obs.box
    mw, mh = (x1 - x0) // 2, (y1 - y0) // 2
    crop = rgb[max(0, y0 - mh): y1 + mh // 2, max(0, x0 - mw): x1 + mw]
    if crop.size == 0:
        return -1.0
    scale = 160.0 / max(1, x1 - x0)
    crop = cv2.resize(crop, (max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale))))
    with models.lock:
        _, scores, _ = models.hog.run(np.ascontiguousarray(crop), 0, -1.0)
    return float(max(scores)) if len(scores) else -1.0


# -- passive decision -------------------------------------------------------------------------
@dataclass
class PassiveResult:
    live: bool
    score: float
    reasons: list[str]
    events: list[Event]
    details: dict

    def as_dict(self) -> dict:
        return {"live": self.live, "score": round(self.score, 3), "reasons": self.reasons,
                "events": [e.as_dict() for e in self.events], "details": self.details}


def passive_liveness(frames: Frames, audio: np.ndarray | None = None, sr: int = 16000,
                     sig: ClipSignals | None = None) -> PassiveResult:
    """Decides whether a clip without a challenge shows a live person. Each failed cue adds a reason."""
    sig = sig if sig is not None else track(frames)
    reasons: list[str] = []
    details: dict = {"frames": len(frames), "sample_fps": SAMPLE_FPS, "present": round(sig.present_ratio, 3)}
    events = detect_events(sig)
    if len(frames) < 10:
        return PassiveResult(False, 0.0, ["the clip is too short (under 1 s)"], events, details)
    if sig.present_ratio < MIN_PRESENT:
        reasons.append(f"no face in {100 - 100 * sig.present_ratio:.0f}% of the clip")
    if not sig.present.any():
        return PassiveResult(False, 0.0, reasons or ["no face found"], events, details)
    multi = float(np.mean(sig.faces_in_frame[sig.present] > 1))
    details["multiple_faces"] = round(multi, 3)
    if multi > 0.1:
        reasons.append("more than one face in the picture")
    frozen = frozen_ratio(frames)
    ident, planar = identity_and_planarity(frames, sig)
    details["frozen"] = round(frozen, 3)
    if frozen > FROZEN_MAX:
        reasons.append("the picture is frozen (repeated frames)")
    details["planar_residual"] = None if planar is None else round(planar, 2)
    if planar is None or planar < PLANAR_RESIDUAL_MIN:
        reasons.append("the face moves like a flat picture (photo, print or screen), not a live face")
    pattern = screen_pattern(frames, sig)
    details["screen_pattern"] = None if pattern is None else round(pattern, 2)
    if pattern is not None and pattern > SCREEN_PATTERN_MAX:
        reasons.append("the face shows the regular pattern of a screen (moiré): it is being filmed off a display")
    idx = [i for i, o in enumerate(sig.observations) if o is not None]
    probe = [idx[0], idx[len(idx) // 2], idx[-1]]
    human = float(np.median([human_face_score(frames.images[i], sig.observations[i]) for i in probe]))
    details["human_face"] = round(human, 3)
    if human < HUMAN_FACE_MIN:
        reasons.append("the face does not look like a human face")
    details["identity_max_distance"] = ident["max_distance"]
    if ident["max_distance"] is None:
        reasons.append("no frontal view of the face to check identity")
    elif not ident["ok"]:
        reasons.append("the face changes identity during the clip")
    if audio is not None and audio.size:
        details["av_sync"] = av_sync(sig, audio, sr)
    # score: the weakest margin among the cues, squashed to 0..1 (0.5 = on the threshold)
    margins = [
        (planar or 0.0) / PLANAR_RESIDUAL_MIN - 1,
        SCREEN_PATTERN_MAX - (pattern or 0.0),
        (human - HUMAN_FACE_MIN),
        (sig.present_ratio - MIN_PRESENT) * 5,
        (FACE_MATCH_THRESHOLD - (ident["max_distance"] or FACE_MATCH_THRESHOLD)) * 4,
    ]
    score = float(1 / (1 + np.exp(-4 * min(margins))))
    return PassiveResult(not reasons, score, reasons, events, details)
