"""The face-alignment backend through its real code path, on a small random-weight FAN built here."""
import numpy as np
import pytest
import torch

from avatar.analysis.face import observe_image
from avatar.analysis.landmarks import FaceAlignmentLandmarks, MediapipeLandmarks, landmark_backend
from avatar.analysis.media import decode_image


@pytest.fixture(scope="module")
def tiny_fan(tmp_path_factory):
    from face_alignment.models import FAN

    torch.manual_seed(0)
    net = FAN(1)  # one hourglass module instead of four: small, random weights
    path = tmp_path_factory.mktemp("fan") / "fan1.pth"
    torch.save(net.state_dict(), path)
    return path


def test_face_alignment_backend_runs_the_package_pipeline(shared_data, tiny_fan):
    backend = FaceAlignmentLandmarks(tiny_fan, network_size=1)
    img = decode_image((shared_data / "faces/img1.jpg").read_bytes(), max_side=640)
    box = observe_image(img).box
    pts = backend.landmarks(img, box)
    assert pts.shape == (68, 2) and np.isfinite(pts).all()
    # heatmap decoding maps points back into the image around the face box
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    assert (pts[:, 0] > x0 - w).all() and (pts[:, 0] < x1 + w).all()
    assert (pts[:, 1] > y0 - h).all() and (pts[:, 1] < y1 + h).all()
    obs = backend.observe(img)
    assert obs.landmarks.shape == (68, 2) and np.isfinite([obs.yaw, obs.eye_left, obs.mouth_open]).all()


def test_weights_that_do_not_fit_are_refused(tiny_fan):
    with pytest.raises(RuntimeError):
        FaceAlignmentLandmarks(tiny_fan, network_size=4)
    with pytest.raises(FileNotFoundError):
        FaceAlignmentLandmarks("/nonexistent/fan.pth")


def test_selection_falls_back_to_mediapipe_without_weights(tiny_fan):
    assert isinstance(landmark_backend("face_alignment", None), MediapipeLandmarks)
    assert isinstance(landmark_backend("face_alignment", "/nonexistent.pth"), MediapipeLandmarks)
    assert isinstance(landmark_backend("mediapipe", tiny_fan), MediapipeLandmarks)
