"""Example-based talking head: the person's own footage, with mouths taken from their own frames
(the idea of Bregler, Covell & Slaney's Video Rewrite, 1997).

The footage (their on-camera reading, or else the part of their live capture where they read the
statement, with its sound) is analysed once per process (`footage_model`, cached by the footage's
SHA-256; at most MAX_SECONDS of it):
- every frame is cropped to the same square around the face (the head's own motion stays) and its
  face mesh tracked;
- each frame's mouth is described by its lip gap and width, and by the class of the phone the person
  was saying then (Whisper word timings spread over espeak-ng's phones: analysis.phones).

Each output frame is then
- a **base frame**: the footage played forward and back from a random start, so the head moves and
  the eyes blink as the person's did;
- with the **lower face of a footage frame** chosen for the phone being said: a Viterbi path over the
  footage frames that costs the distance of each frame's lip gap, width and phone class from what the
  phone asks (lips shut on m/b/p, rounded on u/o/w, open on open vowels), the pose difference to the
  base frame, and a jump cost for leaving the footage's own order (runs of consecutive frames are
  free, so mouths move as the person's mouth moved);
- warped onto the base by the similarity of the two frames' rigid points (forehead, nose bridge,
  cheeks, nose tip), colour-matched on the seam and blended with a feathered mask over both frames'
  lower faces (so no chin of the base shows beside the new one).

Nothing is drawn or filled: every pixel of the face comes from the person's own frames."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np

from avatar.analysis.phones import BILABIAL, LABIODENTAL, Phone, is_vowel
from avatar.synthesis.grant import require_grant
from avatar.synthesis.speech import ReferenceCache
from avatar.synthesis.video import FPS, frame_count
from avatar.synthesis.video.visemes import OPEN_VOWELS, mouth_track, shape_mouth, speech_phones

FACE_SHARE = 0.42  # face height (mesh forehead to chin) / output height: head and shoulders
STABLE = [10, 168, 6, 234, 454, 1, 33, 263]  # forehead, nose bridge, cheeks, nose tip, eye corners
# the region replaced: cheeks at nose level, round the jaw and chin, back up under the nose
LOWER_FACE = [187, 123, 137, 177, 215, 138, 135, 169, 170, 140, 171, 175, 396, 369, 395, 394, 364, 367, 435, 401,
              366, 352, 411, 425, 327, 2, 98, 205]
LIP_TOP, LIP_BOTTOM, LIP_LEFT, LIP_RIGHT = 13, 14, 61, 291
EYE_OUTER = (33, 263)
ROUNDED = {"u:", "U", "O:", "oU", "w", "O", "u", "OI", "aU", "U@", "0"}
SPREAD = {"i:", "i", "I", "E", "eI", "a", "s", "z", "S", "Z", "tS", "dZ"}
MIN_FRAMES = 25  # one second of tracked footage at least
JUMP = 1.2  # cost of leaving the footage's order (a cut between two of its frames; a step back
# is one too: cheap steps back flicker between two mouths)
STEADY_DEGREES = 12.0
STEADY_SECONDS = 2.0
POSE_SCALE = (6.0, 6.0, 5.0)  # degrees of yaw, pitch, roll that cost as much as a wrong viseme, about
POSE_LIMIT = 15.0
# cost of a lip gap off the target by the footage's whole range (squared). The target is each phone's
# opening scaled by the speech's loudness (LOUDNESS_SHARE of it: syllables open and close as the sound
# swells and falls) with the lips shut on m/b/p. Over 3 footage clips (GRID s1, GRID U2, d12) and one
# statement in the offline voice, the capture's own lip-sync measure (liveness.lip_sync; real people
# 0.22-0.76) gave 0.04-0.14 with the phones' shape alone (weight 4, share 0.35), 0.09-0.25 with these
# (share 1.0: 0.18-0.25, but driven by real GRID speech the raw lip/loudness correlation then passes
# 0.7, the top of real clips; at 0.8 it is 0.62-0.68)
OPENING_WEIGHT = 20.0
LOUDNESS_SHARE = 0.8
HOLD = 0.6  # cost of showing the same mouth twice in a row
KEEP = 4  # footage models per process (a 24 s one holds about 40 MB)
MAX_SECONDS = 24.0  # of footage analysed: a 40 s reading's first 24 s cover its sounds many times
JPEG_QUALITY = 95


class FootageError(ValueError):
    """The footage cannot make a talking head (too short, no face tracked)."""


VISEMES = ("silence", "bilabial", "labiodental", "rounded", "open", "vowel", "consonant")


def viseme(phone: str | None) -> str:
    if phone is None:
        return "silence"
    if phone in BILABIAL:
        return "bilabial"
    if phone in LABIODENTAL:
        return "labiodental"
    if phone in ROUNDED:
        return "rounded"
    if is_vowel(phone):
        return "open" if phone in OPEN_VOWELS else "vowel"
    return "consonant"


def frame_visemes(phones: list[Phone], n: int, fps: float) -> list[str]:
    """The viseme class said at the middle of each of n frames."""
    out = ["silence"] * n
    for p in phones:
        for i in range(max(0, int(p.start * fps)), min(n, int(np.ceil(p.end * fps)))):
            if p.start <= (i + 0.5) / fps < p.end or out[i] == "silence":
                out[i] = viseme(p.phone)
    return out


def _rounding(phones: list[Phone], n: int, fps: float) -> np.ndarray:
    """Target mouth width per frame: -1 rounded, +1 spread, 0 otherwise, smoothed over ±1 frame."""
    out = np.zeros(n, np.float32)
    for p in phones:
        v = -1.0 if p.phone in ROUNDED else 1.0 if p.phone in SPREAD else 0.0
        out[max(0, int(p.start * fps)): min(n, int(np.ceil(p.end * fps)))] = v
    return np.convolve(out, [0.25, 0.5, 0.25], mode="same")


@dataclass
class FootageModel:
    """The footage cropped around the face, with what each frame shows. The crops are kept as JPEG
    (about 60 KB each instead of 768 KB at 512 px) and decoded when a frame is made."""

    frames: list[bytes]  # JPEG of each size×size RGB crop
    stable: np.ndarray  # (n, len(STABLE), 2) float32, crop pixels
    lower: np.ndarray  # (n, len(LOWER_FACE), 2) float32
    opening: np.ndarray  # (n,) lip gap, 0 shut .. 1 the footage's wide open (95th percentile)
    width: np.ndarray  # (n,) mouth width, z-scored over the footage (narrow: rounded lips)
    pose: np.ndarray  # (n, 3) yaw, pitch, roll in degrees
    visemes: list[str]
    fps: float

    size: int

    def image(self, i: int) -> np.ndarray:
        """Crop i as RGB uint8."""
        return cv2.cvtColor(cv2.imdecode(np.frombuffer(self.frames[i], np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _crop_matrix(boxes: np.ndarray, shape: tuple[int, ...], size: int) -> np.ndarray:
    """One scale + shift for the whole footage: a square around the median face box (the face
    FACE_SHARE of its height where the picture allows), kept inside the picture."""
    height, width = shape[:2]
    cx = np.median((boxes[:, 0] + boxes[:, 2]) / 2)
    cy = np.median((boxes[:, 1] + boxes[:, 3]) / 2)
    side = min(np.median(boxes[:, 3] - boxes[:, 1]) / FACE_SHARE, width, height)
    x0 = float(np.clip(cx - side / 2, 0, width - side))
    y0 = float(np.clip(cy - 0.47 * side, 0, height - side))
    scale = size / side
    return np.array([[scale, 0, -scale * x0], [0, scale, -scale * y0]], np.float32)


def build(images: list[np.ndarray], audio16: np.ndarray | None, fps: float, size: int = 512,
          phones: list[Phone] | None = None) -> FootageModel:
    """Analyses footage (RGB frames at fps, its 16 kHz audio) into a FootageModel. phones: the
    footage's own timed phones when known (else from its audio)."""
    from avatar.analysis.liveness import track
    from avatar.analysis.media import Frames

    frames = Frames(images=list(images), times=np.arange(len(images)) / fps, fps=fps)
    sig = track(frames)
    keep = [i for i, o in enumerate(sig.observations) if o is not None]
    if len(keep) < MIN_FRAMES:
        raise FootageError(f"the face is tracked in {len(keep)} frames of the footage; {MIN_FRAMES} are needed")
    obs = [sig.observations[i] for i in keep]
    m = _crop_matrix(np.array([o.box for o in obs], np.float64), images[0].shape, size)
    crops = [_jpeg(cv2.warpAffine(images[i], m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE))
             for i in keep]

    def moved(o, idx):
        pts = o.landmarks[idx, :2].astype(np.float32)
        return pts @ m[:, :2].T + m[:, 2]

    lm = [o.landmarks[:, :2] for o in obs]
    eye = np.array([np.linalg.norm(p[EYE_OUTER[0]] - p[EYE_OUTER[1]]) for p in lm])
    gap = np.array([np.linalg.norm(p[LIP_TOP] - p[LIP_BOTTOM]) for p in lm]) / eye
    width = np.array([np.linalg.norm(p[LIP_LEFT] - p[LIP_RIGHT]) for p in lm]) / eye
    top = max(float(np.percentile(gap, 95)), 1e-3)
    if phones is None:
        phones = speech_phones(audio16, 16000) if audio16 is not None and len(audio16) else []
    all_visemes = frame_visemes(phones, len(images), fps)
    return FootageModel(frames=crops, stable=np.stack([moved(o, STABLE) for o in obs]),
                        lower=np.stack([moved(o, LOWER_FACE) for o in obs]),
                        opening=np.clip(gap / top, 0, 1.2).astype(np.float32),
                        width=((width - width.mean()) / (width.std() + 1e-6)).astype(np.float32),
                        pose=np.array([(o.yaw, o.pitch, o.roll) for o in obs], np.float32),
                        visemes=[all_visemes[i] for i in keep], fps=fps, size=size)


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return data.tobytes()


def steady_run(pose: np.ndarray, fps: float) -> tuple[int, int]:
    """The longest run of frames facing the way the footage mostly faces (within STEADY_DEGREES of
    its median pose): where the base frames come from, when it lasts STEADY_SECONDS; else all."""
    near = (np.abs(pose[:, :2] - np.median(pose[:, :2], axis=0)) < STEADY_DEGREES).all(axis=1)
    best, start = (0, 0), None
    for i, ok in enumerate(np.append(near, False)):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            best = max(best, (i - start, start))
            start = None
    length, first = best
    return (first, first + length) if length >= STEADY_SECONDS * fps else (0, len(pose))


def base_sequence(n_out: int, span: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Footage indices within span played forward and back (ping-pong) from a random start."""
    first, end = span
    n_src = end - first
    period = max(1, 2 * (n_src - 1))
    start = int(rng.integers(0, period))
    k = (start + np.arange(n_out)) % period
    return first + np.where(k < n_src, k, period - k).astype(np.int64)


def pose_cost(model: FootageModel, base: np.ndarray) -> np.ndarray:
    """(n_out, n_src): how far each footage frame's head pose is from each output frame's base; a
    lower face from a head turned otherwise does not fit (beyond POSE_LIMIT it is ruled out)."""
    gap = np.abs(model.pose[None, :, :] - model.pose[base][:, None, :])
    cost = ((gap / np.array(POSE_SCALE, np.float32)) ** 2).sum(axis=2)
    return cost + 8.0 * (gap > POSE_LIMIT).any(axis=2)


def choose_mouths(model: FootageModel, opening: np.ndarray, rounding: np.ndarray, visemes: list[str],
                  base: np.ndarray) -> np.ndarray:
    """For each output frame, the footage frame whose mouth it shows (Viterbi over the footage)."""
    n_src = len(model.frames)
    src_vis = np.array([VISEMES.index(v) for v in model.visemes])
    unit = (OPENING_WEIGHT * (opening[:, None] - model.opening[None, :]) ** 2
            + 0.25 * (rounding[:, None] - 0.5 * model.width[None, :]) ** 2 + pose_cost(model, base))
    want = np.array([VISEMES.index(v) for v in visemes])
    unit += 0.6 * (want[:, None] != src_vis[None, :])
    # lips that must shut: a footage frame with open lips is ruled out when a shut one exists
    shut = model.opening <= np.percentile(model.opening, 10) + 0.02
    unit[np.ix_(want == VISEMES.index("bilabial"), ~shut)] += 6.0
    trans = np.full((n_src, n_src), JUMP, np.float32)
    # a cut costs more the more its mouth differs from the one that would have come next
    following = model.opening[np.minimum(np.arange(n_src) + 1, n_src - 1)]
    trans += 2.0 * np.abs(following[:, None] - model.opening[None, :])
    trans[np.arange(n_src - 1), np.arange(1, n_src)] = 0.0
    trans[np.arange(n_src), np.arange(n_src)] = HOLD
    cost = unit[0].copy()
    back = np.zeros((len(opening), n_src), np.int32)
    for i in range(1, len(opening)):
        total = cost[:, None] + trans
        back[i] = np.argmin(total, axis=0)
        cost = total[back[i], np.arange(n_src)] + unit[i]
    path = np.zeros(len(opening), np.int64)
    path[-1] = int(np.argmin(cost))
    for i in range(len(opening) - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def composite(model: FootageModel, b: int, s: int) -> np.ndarray:
    """Base frame b with the lower face of footage frame s."""
    base = model.image(b)
    if b == s:
        return base
    size = model.size
    m, _ = cv2.estimateAffinePartial2D(model.stable[s], model.stable[b])
    if m is None:
        return base
    src = cv2.warpAffine(model.image(s), m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    lower_s = model.lower[s] @ m[:, :2].T + m[:, 2]
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(lower_s).astype(np.int32)], 255)
    cv2.fillPoly(mask, [np.round(model.lower[b]).astype(np.int32)], 255)
    pad = max(3, size // 80)
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pad + 1, 2 * pad + 1)))
    x, y, w, h = cv2.boundingRect(mask)
    feather = max(2.0, size / 100)
    m2 = 2 * int(3 * feather) + 1
    x0, y0 = max(0, x - m2), max(0, y - m2)
    x1, y1 = min(size, x + w + m2), min(size, y + h + m2)
    alpha = cv2.GaussianBlur(mask[y0:y1, x0:x1].astype(np.float32) / 255, (0, 0), feather)[..., None]
    b_roi, s_roi = base[y0:y1, x0:x1].astype(np.float32), src[y0:y1, x0:x1].astype(np.float32)
    seam = ((alpha > 0.05) & (alpha < 0.6))[..., 0]
    if seam.sum() > 20:  # the two frames' light where they meet: match the inserted part's colour
        s_roi += b_roi[seam].mean(0) - s_roi[seam].mean(0)
    out = base.copy()
    out[y0:y1, x0:x1] = np.clip(s_roi * alpha + b_roi * (1 - alpha), 0, 255).astype(np.uint8)
    return out


def _analyse(footage: bytes, size: int) -> FootageModel:
    from avatar.analysis.media import MediaFile

    with MediaFile(footage) as mf:  # at most MAX_SECONDS of it: about 0.5 GB decoded while analysed
        frames, audio = mf.clip(FPS, max_side=640, need_audio=True, seconds=MAX_SECONDS)
    return build(frames.images, audio, FPS, size)


_MODELS: ReferenceCache[FootageModel] = ReferenceCache(_analyse, keep=KEEP)


def footage_model(footage: bytes, size: int) -> FootageModel:
    """The FootageModel of encoded footage (MP4 with audio), built once per process and size."""
    return _MODELS.get(footage, size)


def render(model: FootageModel, speech, fps: float = FPS, seed: int = 0, check=None) -> Iterator[np.ndarray]:
    """The frames of the person saying `speech` (a synthesis Speech)."""
    n = frame_count(speech.seconds, fps)
    phones = speech_phones(speech.audio, speech.sr, speech.text)
    opening = shape_mouth(mouth_track(speech.audio, speech.sr, fps, n), phones, fps, LOUDNESS_SHARE)
    visemes = frame_visemes(phones, n, fps)
    base = base_sequence(n, steady_run(model.pose, model.fps), np.random.default_rng(seed))
    mouths = choose_mouths(model, opening, _rounding(phones, n, fps), visemes, base)
    for i in range(n):
        if check is not None and i % 25 == 0:
            check()
        yield composite(model, int(base[i]), int(mouths[i]))


class ExampleTalkingHead:
    """The talking head from the person's enrolled footage; a likeness enrolled without footage is
    animated from its reference picture (offline.MeshTalkingHead), and `name` then says so."""

    name = "offline-example-based"

    def frames(self, grant, speech, size: int = 512, fps: float = FPS, seed: int = 0) -> Iterator[np.ndarray]:
        grant = require_grant(grant)
        if grant.modality != "video":
            raise FootageError("a video needs a grant for video")
        likeness = grant.likeness()
        model = None
        if likeness.footage is not None:
            from avatar.analysis.media import MediaError

            try:
                model = footage_model(likeness.footage, size)
            except (FootageError, MediaError):
                model = None  # footage that no longer decodes or shows no face: the picture instead
        if model is None:
            from avatar.synthesis.video.offline import MeshTalkingHead

            mesh = MeshTalkingHead()
            self.name = mesh.name
            yield from mesh.frames(grant, speech, size, fps, seed)
            return
        yield from render(model, speech, fps, seed, grant.ensure_valid)
