"""Video backends: a talking head of the enrolled face saying a Speech.

Interface (what a neural talking-head model plugs in as, e.g. on a GPU worker): a class with a
`name` and `frames(grant, speech, size, fps) -> Iterator[np.ndarray]` yielding RGB uint8 frames;
register it in BACKENDS and select it with AVATAR_VIDEO_BACKEND. Rendering, labels, watermark and
encoding (avatar.synthesis.render) are shared by all backends."""
from __future__ import annotations

BACKENDS: dict[str, str] = {"offline": "avatar.synthesis.video.example_based:ExampleTalkingHead",
                            "mesh": "avatar.synthesis.video.offline:MeshTalkingHead"}
FPS = 25


def frame_count(seconds: float, fps: float = FPS) -> int:
    """How many frames a backend renders for speech of this length."""
    return max(1, int(round(seconds * fps)))


def get_backend(name: str = "offline"):
    import importlib

    if name not in BACKENDS:
        raise ValueError(f"unknown video backend {name!r}; known: {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)()
