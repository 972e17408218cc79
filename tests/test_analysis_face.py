"""Face detection, signals and identity on the shared photographs."""
import cv2
import numpy as np
import pytest

from avatar.analysis.checks import face_check
from avatar.analysis.evaluation import eval_faces
from avatar.analysis.face import (
    FaceError,
    aligned_face,
    face_distance,
    face_embedding,
    observe_image,
    require_single_face,
)
from avatar.analysis.media import decode_image


def load(shared_data, name):
    return decode_image((shared_data / name).read_bytes(), max_side=800)


def test_face_verification_accuracy_on_labeled_pairs(shared_data):
    r = eval_faces(shared_data / "faces/pairs.csv", shared_data / "faces")
    assert r["accuracy"] >= 0.97 and r["n"] == 105 and r["no_face"] == []


def test_signals_of_a_frontal_face(shared_data):
    obs = observe_image(load(shared_data, "faces/img1.jpg"))
    assert obs.landmarks.shape == (478, 3) and obs.faces_in_frame == 1
    assert abs(obs.yaw) < 12 and abs(obs.pitch) < 12 and abs(obs.roll) < 10
    assert 0.2 < obs.eye_left < 0.45 and 0.2 < obs.eye_right < 0.45
    assert obs.size > 200 and obs.sharpness > 50


def test_head_pose_flips_with_a_mirror_image(shared_data):
    img = load(shared_data, "faces/img11.jpg")
    a, b = observe_image(img), observe_image(np.ascontiguousarray(img[:, ::-1]))
    assert a.yaw > 10 and b.yaw < -10 and abs(a.yaw + b.yaw) < 4
    assert abs(a.roll + b.roll) < 4


def test_embedding_is_stable_and_aligned_reference_is_made(shared_data):
    img = load(shared_data, "faces/img1.jpg")
    obs = observe_image(img)
    e = face_embedding(img, obs)
    assert e.shape == (128,) and face_distance(e, face_embedding(img, obs)) < 1e-5
    chip = aligned_face(img, obs)
    assert chip.shape == (256, 256, 3)


@pytest.mark.parametrize("name,reason", [
    ("faces/couple.jpg", "2 faces"),
    ("faces/selfie-many-people.jpg", "faces found"),
    ("stills/s25.jpg", "human"),
    ("stills/s22.jpg", "human"),
])
def test_refused_images(shared_data, name, reason):
    r = face_check(load(shared_data, name))
    assert r["ok"] is False and reason in r["reason"]


def test_no_face_small_face_blurry_face(shared_data):
    blank = np.full((480, 640, 3), 128, np.uint8)
    assert face_check(blank) == {"ok": False, "faces": 0, "reason": "no face found"}
    img = load(shared_data, "faces/img1.jpg")
    tiny = cv2.resize(img, (int(img.shape[1] / 3.5), int(img.shape[0] / 3.5)))  # face ≈ 75 px
    small = np.full_like(img, 120)
    small[: tiny.shape[0], : tiny.shape[1]] = tiny
    with pytest.raises(FaceError, match="too small"):
        require_single_face(observe_image(small))
    blurred = cv2.GaussianBlur(img, (0, 0), 9)
    r = face_check(blurred)
    assert r["ok"] is False and "blurry" in r["reason"]


def test_real_photos_pass_the_check(shared_data):
    for name in ("faces/img1.jpg", "faces/img6.jpg", "stills/s42.jpg"):
        assert face_check(load(shared_data, name))["ok"], name
