"""Landmark backends behind one interface: `backend.observe(rgb) -> FaceObservation | None`.

- mediapipe (default): 478-point mesh, weights inside the mediapipe package.
- face_alignment: the `face-alignment` package's FAN (68 iBUG points), run through that
  package's own crop and heatmap decoding. Its weights are downloaded at run time by the package,
  which cannot happen here, so the backend is used only when a FAN state-dict file is given
  (landmark_backend(weights=...)); the enrollment analysis does not use it (its cues are laid out on
  mediapipe's mesh), and no setting selects it. Face boxes come from mediapipe.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from avatar.analysis.face import IBUG68_LAYOUT, FaceObservation, observe_image, observe_points

REFERENCE_SCALE = 195.0  # face_alignment's detector reference scale for box → crop scale


class MediapipeLandmarks:
    name = "mediapipe"

    def observe(self, rgb: np.ndarray) -> FaceObservation | None:
        return observe_image(rgb)


class _BoxesGiven:
    """Stands in for face_alignment's detector: boxes are passed in, only the scale is read."""

    reference_scale = REFERENCE_SCALE


class FaceAlignmentLandmarks:
    name = "face_alignment"

    def __init__(self, weights: str | Path, network_size: int = 4, device: str = "cpu"):
        import torch
        from face_alignment.api import FaceAlignment, LandmarksType
        from face_alignment.models import FAN

        weights = Path(weights)
        if not weights.is_file():
            raise FileNotFoundError(f"face-alignment weights not found at {weights}")
        net = FAN(network_size)
        net.load_state_dict(torch.load(weights, map_location=device, weights_only=True))
        net.eval()
        # FaceAlignment.__init__ would download a detector and the FAN weights; the attributes its
        # get_landmarks_from_image() reads are set here instead, so the package's own
        # preprocessing and decoding run unchanged.
        fa = FaceAlignment.__new__(FaceAlignment)
        fa.device, fa.dtype, fa.flip_input, fa.verbose, fa.max_batch_size = device, torch.float32, False, False, 1
        fa.landmarks_type = LandmarksType.TWO_D
        fa.face_alignment_net = net
        fa.face_detector = _BoxesGiven()
        self._fa = fa
        self._torch = torch
        self._lock = threading.Lock()

    def landmarks(self, rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """68 (x, y) points for the face in box (x0, y0, x1, y1)."""
        x0, y0, x1, y1 = box
        with self._lock, self._torch.inference_mode():
            pts = self._fa.get_landmarks_from_image(np.ascontiguousarray(rgb),
                                                    detected_faces=[np.array([x0, y0, x1, y1, 1.0], np.float32)])
        return np.asarray(pts[0], dtype=np.float32)

    def observe(self, rgb: np.ndarray) -> FaceObservation | None:
        mesh = observe_image(rgb)  # the face box (and the face count) from mediapipe
        if mesh is None:
            return None
        return observe_points(rgb, self.landmarks(rgb, mesh.box), IBUG68_LAYOUT, mesh.faces_in_frame)


def landmark_backend(name: str = "mediapipe", weights: str | Path | None = None):
    """The configured backend; face_alignment falls back to mediapipe when its weights are absent."""
    if name == "face_alignment" and weights and Path(weights).is_file():
        return FaceAlignmentLandmarks(weights)
    return MediapipeLandmarks()
