"""Face analysis on RGB arrays: mediapipe 478-point mesh, head pose, eyes, mouth, quality, and the
dlib 128-d identity template. Models load once per process (get_face_models()); calls are
serialized per model with a lock because mediapipe graphs are not re-entrant."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from avatar.analysis.model_files import model_path

# mediapipe mesh indices
RIGHT_EYE = (33, 160, 158, 133, 153, 144)  # subject's right eye: outer, top×2, inner, bottom×2
LEFT_EYE = (263, 387, 385, 362, 380, 373)
MOUTH_INNER_TOP, MOUTH_INNER_BOTTOM = 13, 14
MOUTH_LEFT, MOUTH_RIGHT = 61, 291  # image-left / image-right outer corners
CHIN, NOSE_TIP = 152, 1
# Where each signal's points sit in a landmark layout: mediapipe's 478-point mesh and the
# 68-point iBUG layout of the face-alignment backend. Eyes: outer, top, top, inner, bottom, bottom.
MEDIAPIPE_LAYOUT = {"right_eye": RIGHT_EYE, "left_eye": LEFT_EYE, "mouth_top": MOUTH_INNER_TOP,
                    "mouth_bottom": MOUTH_INNER_BOTTOM, "mouth_left": MOUTH_LEFT, "mouth_right": MOUTH_RIGHT,
                    "nose": NOSE_TIP, "chin": CHIN, "eye_outer_left_img": 33, "eye_outer_right_img": 263}
IBUG68_LAYOUT = {"right_eye": (36, 37, 38, 39, 40, 41), "left_eye": (45, 44, 43, 42, 47, 46), "mouth_top": 62,
                 "mouth_bottom": 66, "mouth_left": 48, "mouth_right": 54, "nose": 30, "chin": 8,
                 "eye_outer_left_img": 36, "eye_outer_right_img": 45}
# A generic 3D face (mm-ish), camera frame: x to image right, y down, z away from the camera.
POSE_MODEL = np.array([
    (0.0, 0.0, 0.0),          # nose tip
    (0.0, 330.0, 65.0),       # chin
    (-225.0, -170.0, 135.0),  # image-left eye outer corner (subject's right eye)
    (225.0, -170.0, 135.0),   # image-right eye outer corner
    (-150.0, 150.0, 125.0),   # image-left mouth corner
    (150.0, 150.0, 125.0),    # image-right mouth corner
], dtype=np.float64)

PITCH_BIAS = 12.0
FACE_MATCH_THRESHOLD = 0.6  # dlib distance (its LFW calibration); on shared pairs genuine ≤ 0.50, impostor ≥ 0.78
MIN_FACE_PX = 100
MIN_SHARPNESS = 12.0


class FaceError(ValueError):
    """No usable face: the message says why (no face, several faces, too small, too blurry…)."""


@dataclass
class FaceObservation:
    """One face in one frame: landmarks in pixels and the signals derived from them."""

    landmarks: np.ndarray  # (478, 3): x, y in pixels, z relative (mediapipe scale × width)
    box: tuple[int, int, int, int]  # x0, y0, x1, y1
    yaw: float  # degrees, + = head turned toward the subject's left (nose to image right)
    pitch: float  # degrees, + = looking up
    roll: float  # degrees
    eye_left: float  # eye aspect ratio of the subject's left eye
    eye_right: float
    mouth_open: float  # inner lip gap / mouth width
    smile: float  # mouth width / eye-corner distance
    sharpness: float  # Laplacian variance of the face crop at 128 px
    brightness: float  # mean luma of the face crop, 0–255
    faces_in_frame: int = 1

    @property
    def size(self) -> int:
        return min(self.box[2] - self.box[0], self.box[3] - self.box[1])

    @property
    def eye_open(self) -> float:
        return (self.eye_left + self.eye_right) / 2


@dataclass
class FaceModels:
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        import dlib
        import mediapipe as mp

        self._mp = mp
        self.image_mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=3, refine_landmarks=True, min_detection_confidence=0.5)
        self.shape5 = dlib.shape_predictor(str(model_path("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat")))
        self.encoder = dlib.face_recognition_model_v1(
            str(model_path("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat")))
        self.hog = dlib.get_frontal_face_detector()
        # BlazeFace full-range: finds faces down to ~5 % of the frame (the mesh's own short-range
        # detector misses a face under ~25 % of a wide frame: a person sitting back from a 720p webcam)
        self.finder = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)
        self._dlib = dlib

    def video_mesh(self, max_faces: int = 2):
        """A tracking mesh for one clip (tracking state must not leak between clips). Two faces are
        looked for so that a second person in the frame is counted; while it has fewer faces than
        max_faces the mesh runs its detector on every frame, so a crop known to hold one face is
        tracked with max_faces=1 (a third faster, the same landmarks)."""
        return self._mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=max_faces, refine_landmarks=True,
            min_detection_confidence=0.5, min_tracking_confidence=0.5)


@lru_cache(maxsize=1)
def get_face_models() -> FaceModels:
    return FaceModels()


# -- per-frame signals ------------------------------------------------------------------------
def _dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a[:2] - b[:2]))


def eye_aspect_ratio(lm: np.ndarray, ids: tuple[int, ...]) -> float:
    p1, p2, p3, p4, p5, p6 = (lm[i] for i in ids)
    return (_dist(p2, p6) + _dist(p3, p5)) / (2.0 * max(_dist(p1, p4), 1e-6))


def head_pose(lm: np.ndarray, width: int, height: int, layout: dict = MEDIAPIPE_LAYOUT) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees from solvePnP of six landmarks against POSE_MODEL."""
    ids = (layout["nose"], layout["chin"], layout["eye_outer_left_img"], layout["eye_outer_right_img"],
           layout["mouth_left"], layout["mouth_right"])
    image_pts = np.array([lm[i, :2] for i in ids], dtype=np.float64)
    focal = float(max(width, height))
    cam = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=np.float64)
    # Start from a frontal face at the distance its eye span suggests, so the solver stays on
    # the physical solution instead of flipping through 180°.
    span = max(np.linalg.norm(image_pts[3] - image_pts[2]), 1.0)
    rvec = np.zeros((3, 1))
    tvec = np.array([[0.0], [0.0], [focal * 450.0 / span]])
    ok, rvec, _ = cv2.solvePnP(POSE_MODEL, image_pts, cam, np.zeros(4), rvec, tvec, True, cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return 0.0, 0.0, 0.0
    rot, _ = cv2.Rodrigues(rvec)
    angles, *_ = cv2.RQDecomp3x3(rot)
    pitch, yaw, roll = ((a + 180) % 360 - 180 for a in angles)
    # camera frame has y down: a positive rotation about x tilts the face down, so flip pitch;
    # the generic model's nose sits low, which reads ~12° down on frontal photos: corrected.
    return float(-yaw), float(-pitch + PITCH_BIAS), float(roll)


def face_quality(rgb: np.ndarray, box: tuple[int, int, int, int]) -> tuple[float, float]:
    x0, y0, x1, y1 = box
    crop = rgb[max(0, y0):y1, max(0, x0):x1]
    if crop.size == 0:
        return 0.0, 0.0
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    gray = cv2.resize(gray, (128, int(128 * gray.shape[0] / max(gray.shape[1], 1)) or 1), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var()), float(gray.mean())


def observe(rgb: np.ndarray, mesh_result, faces_in_frame: int | None = None,
            region: tuple[int, int, int, int] | None = None) -> FaceObservation | None:
    """Turns a mediapipe result into the signals of its largest face (None if no face). With
    region, the mesh ran on that crop of the frame: the landmarks are placed back in the frame."""
    faces = mesh_result.multi_face_landmarks or []
    if not faces:
        return None
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = region or (0, 0, w, h)
    cw, ch = x1 - x0, y1 - y0
    arrays = [np.array([(x0 + p.x * cw, y0 + p.y * ch, p.z * cw) for p in f.landmark], dtype=np.float32)
              for f in faces]
    lm = max(arrays, key=lambda a: np.ptp(a[:, 0]) * np.ptp(a[:, 1]))
    return observe_points(rgb, lm, MEDIAPIPE_LAYOUT, faces_in_frame if faces_in_frame is not None else len(arrays))


def observe_in_region(rgb: np.ndarray, region: tuple[int, int, int, int], mesh,
                      faces_in_frame: int = 0) -> FaceObservation | None:
    """Runs the mesh on a region of the frame and returns the observation in frame coordinates:
    a small face is meshed as if the camera had zoomed in on it. faces_in_frame: faces seen in the
    whole frame (the crop may not hold them all)."""
    x0, y0, x1, y1 = region
    result = mesh.process(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
    found = len(result.multi_face_landmarks or [])
    return observe(rgb, result, max(found, faces_in_frame), region)


def find_faces(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes of the faces in a frame (full-range detector), largest first."""
    models = get_face_models()
    h, w = rgb.shape[:2]
    with models.lock:
        result = models.finder.process(np.ascontiguousarray(rgb))
    boxes = []
    for det in result.detections or []:
        b = det.location_data.relative_bounding_box
        boxes.append((int(b.xmin * w), int(b.ymin * h), int((b.xmin + b.width) * w), int((b.ymin + b.height) * h)))
    return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))


def observe_points(rgb: np.ndarray, lm: np.ndarray, layout: dict, faces_in_frame: int = 1) -> FaceObservation:
    """The per-frame signals from landmarks in any layout (MEDIAPIPE_LAYOUT, IBUG68_LAYOUT)."""
    h, w = rgb.shape[:2]
    x0, y0 = np.floor(lm[:, :2].min(0)).astype(int)
    x1, y1 = np.ceil(lm[:, :2].max(0)).astype(int)
    box = (int(max(0, x0)), int(max(0, y0)), int(min(w, x1)), int(min(h, y1)))
    yaw, pitch, roll = head_pose(lm, w, h, layout)
    mouth_w = max(_dist(lm[layout["mouth_left"]], lm[layout["mouth_right"]]), 1e-6)
    sharp, bright = face_quality(rgb, box)
    return FaceObservation(
        landmarks=lm, box=box, yaw=yaw, pitch=pitch, roll=roll,
        eye_left=eye_aspect_ratio(lm, layout["left_eye"]), eye_right=eye_aspect_ratio(lm, layout["right_eye"]),
        mouth_open=_dist(lm[layout["mouth_top"]], lm[layout["mouth_bottom"]]) / mouth_w,
        smile=mouth_w / max(_dist(lm[layout["eye_outer_left_img"]], lm[layout["eye_outer_right_img"]]), 1e-6),
        sharpness=sharp, brightness=bright, faces_in_frame=faces_in_frame,
    )


def observe_image(rgb: np.ndarray) -> FaceObservation | None:
    models = get_face_models()
    with models.lock:
        result = models.image_mesh.process(rgb)
    return observe(rgb, result)


def require_single_face(obs: FaceObservation | None, min_size: int = MIN_FACE_PX,
                        min_sharpness: float = MIN_SHARPNESS) -> FaceObservation:
    """The observation if it is one usable face, else FaceError naming the problem."""
    if obs is None:
        raise FaceError("no face found")
    if obs.faces_in_frame > 1:
        raise FaceError(f"{obs.faces_in_frame} faces found; only one person may be in the picture")
    if obs.size < min_size:
        raise FaceError(f"the face is too small ({obs.size} px; at least {min_size} px)")
    if obs.sharpness < min_sharpness:
        raise FaceError("the face is too blurry")
    if obs.brightness < 35:
        raise FaceError("the face is too dark")
    if obs.brightness > 235:
        raise FaceError("the face is overexposed")
    return obs


# -- identity ---------------------------------------------------------------------------------
def face_embedding(rgb: np.ndarray, obs: FaceObservation) -> np.ndarray:
    """128-d dlib descriptor of the face, aligned by dlib's 5-point model inside the mesh box."""
    models = get_face_models()
    x0, y0, x1, y1 = obs.box
    # the mesh box is tight (brows to chin); dlib's detector boxes reach a little higher
    pad_top = int(0.12 * (y1 - y0))
    rect = models._dlib.rectangle(int(x0), int(max(0, y0 - pad_top)), int(x1), int(y1))
    img = np.ascontiguousarray(rgb)
    with models.lock:
        shape = models.shape5(img, rect)
        desc = models.encoder.compute_face_descriptor(img, shape, 0)
    return np.asarray(desc, dtype=np.float32)


def aligned_face(rgb: np.ndarray, obs: FaceObservation, size: int = 256) -> np.ndarray:
    """A size×size crop aligned by dlib's 5 landmarks (the enrolled reference image)."""
    models = get_face_models()
    x0, y0, x1, y1 = obs.box
    rect = models._dlib.rectangle(int(x0), int(max(0, y0 - int(0.12 * (y1 - y0)))), int(x1), int(y1))
    img = np.ascontiguousarray(rgb)
    with models.lock:
        shape = models.shape5(img, rect)
        chip = models._dlib.get_face_chip(img, shape, size=size, padding=0.35)
    return np.asarray(chip)


def face_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)))
