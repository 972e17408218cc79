"""Offline talking head: the enrolled face animated with its own mediapipe mesh.

The mesh of the reference frame is triangulated once; each output frame moves the mesh points
(jaw and lips opened by the phones of the speech and its loudness, shut on m/b/p: visemes.py;
eyelids for blinks), warps the picture triangle by triangle (one dense map, one cv2.remap), fills
the opened mouth, and adds slight head motion."""
from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

from avatar.synthesis.grant import require_grant
from avatar.synthesis.video import FPS, frame_count
from avatar.synthesis.video.visemes import mouth_track, shape_mouth, speech_phones

UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LOWER_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
LOWER_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
EYE_LIDS = [  # (upper, lower) pairs of both eyes
    (159, 145), (158, 153), (157, 154), (160, 144), (161, 163), (246, 7),
    (386, 374), (385, 380), (384, 381), (387, 373), (388, 390), (466, 249),
]
CHIN = 152


class VideoError(Exception):
    pass


def blink_track(n_frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Eyelid closure 0–1: a blink every 2.5–5 s lasting about 0.2 s."""
    out = np.zeros(n_frames, np.float32)
    t = rng.uniform(0.8, 2.0)
    shape = np.array([0.5, 1.0, 1.0, 0.6, 0.2], np.float32)
    while t * fps < n_frames:
        i = int(t * fps)
        seg = out[i: i + len(shape)]
        out[i: i + len(shape)] = np.maximum(seg, shape[: len(seg)])
        t += rng.uniform(2.5, 5.0)
    return out


class _Rig:
    """The reference picture, its mesh, triangles and per-point motion weights."""

    def __init__(self, face: np.ndarray, size: int):
        from scipy.spatial import Delaunay

        from avatar.analysis.face import observe_image

        self.image = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
        obs = observe_image(self.image)
        if obs is None:
            raise VideoError("no face found in the enrolled reference picture")
        lm = obs.landmarks[:468, :2].astype(np.float64)  # without the iris points (blinks fold them)
        s = size - 1
        border = np.array([[0, 0], [s / 2, 0], [s, 0], [s, s / 2], [s, s], [s / 2, s], [0, s], [0, s / 2]], np.float64)
        self.points = np.vstack([lm, border])
        self.tris = Delaunay(self.points).simplices
        self.n_mesh = len(lm)
        mouth_c = (lm[13] + lm[14]) / 2
        mouth_w = np.linalg.norm(lm[61] - lm[291])
        self.open_px = 0.24 * mouth_w
        self.closed_mouth = obs.mouth_open < 0.08
        # the reference's own lip gap in units of the jaw motion (the inner lips close by 1.12 open_px
        # a unit): an opening of 0 shuts the lips even where the reference shows them parted
        self.rest = obs.mouth_open * mouth_w / (1.12 * self.open_px)
        chin_y = lm[CHIN, 1]
        w = np.zeros(len(self.points))
        below = (lm[:, 1] > mouth_c[1]) & (lm[:, 1] <= chin_y + 2)
        horiz = np.exp(-((lm[:, 0] - mouth_c[0]) / (1.1 * mouth_w)) ** 2)
        w[: self.n_mesh][below] = (0.75 + 0.25 * horiz[below]) * horiz[below] ** 0.5
        w[LOWER_INNER[1:-1]] = 1.0
        w[LOWER_OUTER[1:-1]] = 1.0
        w[UPPER_INNER[1:-1]] = -0.12
        self.jaw_weight = w
        self.lid_shift = np.zeros_like(self.points)
        for up, lo in EYE_LIDS:
            self.lid_shift[up] = (lm[lo] - lm[up]) * 0.9
        self.ys, self.xs = np.mgrid[0:size, 0:size].astype(np.float32)

    def frame(self, mouth: float, blink: float, head: tuple[float, float, float]) -> np.ndarray:
        size = self.image.shape[0]
        dst = self.points.copy()
        dst[:, 1] += self.jaw_weight * (mouth - self.rest * (1 - mouth)) * self.open_px
        dst += self.lid_shift * blink
        moved = np.flatnonzero(np.abs(dst - self.points).sum(1) > 0.05)
        map_x, map_y = self.xs.copy(), self.ys.copy()
        if moved.size:
            tris = self.tris[np.isin(self.tris, moved).any(axis=1)]
            index = np.zeros((size, size), np.int32)
            for k, t in enumerate(tris, start=1):
                cv2.fillConvexPoly(index, np.round(dst[t]).astype(np.int32), k)
            mats = np.zeros((len(tris) + 1, 2, 3), np.float32)
            mats[0] = [[1, 0, 0], [0, 1, 0]]
            for k, t in enumerate(tris, start=1):
                mats[k] = cv2.getAffineTransform(dst[t].astype(np.float32), self.points[t].astype(np.float32))
            sel = index > 0
            m = mats[index[sel]]
            x, y = self.xs[sel], self.ys[sel]
            map_x[sel] = m[:, 0, 0] * x + m[:, 0, 1] * y + m[:, 0, 2]
            map_y[sel] = m[:, 1, 0] * x + m[:, 1, 1] * y + m[:, 1, 2]
        out = cv2.remap(self.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if mouth > 0.05:
            out = self._fill_mouth(out, dst, mouth)
        angle, dx, dy = head
        rot = cv2.getRotationMatrix2D((size / 2, size * 0.6), angle, 1.0)
        rot[:, 2] += (dx, dy)
        return cv2.warpAffine(out, rot, (size, size), borderMode=cv2.BORDER_REFLECT)

    def _fill_mouth(self, img: np.ndarray, dst: np.ndarray, mouth: float) -> np.ndarray:
        poly = np.vstack([dst[UPPER_INNER], dst[LOWER_INNER[::-1]]]).astype(np.int32)
        mask = np.zeros(img.shape[:2], np.float32)
        cv2.fillPoly(mask, [poly], 1.0)
        if mask.sum() < 4:
            return img
        fill = np.zeros_like(img)
        fill[:] = (58, 22, 26)  # the mouth's dark inside
        # where the reference shows teeth (mouth already open) the warp stretches them: only shade
        strength = min(1.0, mouth * 2.0) * (0.92 if self.closed_mouth else 0.35)
        mask = cv2.GaussianBlur(mask, (0, 0), 1.5)[..., None] * strength
        return (img * (1 - mask) + fill * mask).astype(np.uint8)


class MeshTalkingHead:
    name = "offline-mesh-warp"

    def frames(self, grant, speech, size: int = 512, fps: float = FPS, seed: int = 0) -> Iterator[np.ndarray]:
        grant = require_grant(grant)
        if grant.modality != "video":
            raise VideoError("a video needs a grant for video")
        rig = _Rig(grant.likeness().face, size)
        n = frame_count(speech.seconds, fps)
        mouth = shape_mouth(mouth_track(speech.audio, speech.sr, fps, n), speech_phones(speech.audio, speech.sr, speech.text), fps)
        rng = np.random.default_rng(seed)
        blink = blink_track(n, fps, rng)
        t = np.arange(n) / fps
        ph = rng.uniform(0, 2 * np.pi, 3)
        head = np.stack([1.6 * np.sin(2 * np.pi * 0.23 * t + ph[0]), 2.5 * np.sin(2 * np.pi * 0.17 * t + ph[1]),
                         1.5 * np.sin(2 * np.pi * 0.29 * t + ph[2])], axis=1)
        for i in range(n):
            if i % 25 == 0:
                grant.ensure_valid()  # a revocation stops rendering within a second of video
            yield rig.frame(float(mouth[i]), float(blink[i]), tuple(head[i]))
