"""Decoding any common upload, and one typed error for everything unusable."""
import subprocess

import numpy as np
import pytest

from avatar.analysis.media import Limits, MediaError, MediaFile, decode_audio, decode_clip, decode_image
from avatar.demo.media import FFMPEG, tmpdir

VIDEO = "video/d12.mp4"


@pytest.fixture(scope="module")
def converted(shared_data):
    """The same real clip in the containers and codecs browsers and phones send."""
    d = tmpdir()
    src = shared_data / VIDEO
    out = {}
    for name, args in {
        "webm_vp8": ["-t", "3", "-c:v", "libvpx", "-b:v", "1M", "-c:a", "libopus"],
        "webm_vp9": ["-t", "3", "-c:v", "libvpx-vp9", "-b:v", "1M", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"],
        "mov": ["-t", "3", "-c:v", "libx264", "-c:a", "aac"],
    }.items():
        ext = name.split("_")[0]
        path = d / f"clip.{name}.{ext}"
        subprocess.run(FFMPEG + ["-i", str(src), *args, str(path)], check=True, capture_output=True)
        out[name] = path
    for ext, args in {"wav": [], "mp3": ["-c:a", "libmp3lame"], "ogg": ["-c:a", "libvorbis"], "flac": []}.items():
        path = d / f"audio.{ext}"
        subprocess.run(FFMPEG + ["-i", str(src), "-vn", "-t", "3", *args, str(path)], check=True, capture_output=True)
        out[ext] = path
    png = d / "face.png"
    subprocess.run(FFMPEG + ["-i", str(shared_data / "faces/img1.jpg"), str(png)], check=True, capture_output=True)
    out["png"] = png
    return out


@pytest.mark.parametrize("name", ["webm_vp8", "webm_vp9", "mov"])
def test_video_containers_decode_to_frames_and_16k_audio(converted, name):
    frames, audio, probe = decode_clip(converted[name].read_bytes(), fps=10)
    assert 28 <= len(frames) <= 32 and frames.images[0].dtype == np.uint8 and frames.images[0].shape[2] == 3
    assert np.allclose(np.diff(frames.times), 0.1)
    assert audio.dtype == np.float32 and abs(audio.size / 16000 - 3.0) < 0.1 and np.abs(audio).max() <= 1.0


@pytest.mark.parametrize("ext", ["wav", "mp3", "ogg", "flac"])
def test_audio_formats(converted, ext):
    audio = decode_audio(converted[ext].read_bytes())
    assert abs(audio.size / 16000 - 3.0) < 0.15 and audio.std() > 0.001


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_images(converted, shared_data, ext):
    data = converted["png"].read_bytes() if ext == "png" else (shared_data / "faces/img1.jpg").read_bytes()
    img = decode_image(data)
    assert img.ndim == 3 and max(img.shape[:2]) <= 1280
    with MediaFile(data) as mf:
        assert mf.probe.is_image


def test_mp4_from_shared_data(shared_data):
    frames, audio, probe = decode_clip((shared_data / VIDEO).read_bytes(), fps=10)
    assert probe.has_audio and probe.video_codec == "h264" and len(frames) > 60


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"\x00\x01garbage" * 100, "not a readable"),
    (b"%PDF-1.4\n" + b"x" * 4000, "not a readable"),
    ("I am text, not media".encode() * 50, "not a readable"),
])
def test_unusable_input_raises_one_typed_error(data, message):
    with pytest.raises(MediaError, match=message):
        decode_clip(data, fps=10)


def test_truncated_video_is_refused(shared_data):
    data = (shared_data / VIDEO).read_bytes()
    with pytest.raises(MediaError):
        decode_clip(data[: len(data) // 3], fps=10)
    with pytest.raises(MediaError):
        decode_clip(data[:2000], fps=10)


def test_limits(shared_data):
    data = (shared_data / VIDEO).read_bytes()
    with pytest.raises(MediaError, match="too large"):
        decode_clip(data, fps=10, limits=Limits(max_bytes=1000))
    with pytest.raises(MediaError, match="too long"):
        decode_clip(data, fps=10, limits=Limits(max_seconds=3))
    with pytest.raises(MediaError, match="too large"):
        decode_clip(data, fps=10, limits=Limits(max_pixels=100 * 100))


def test_missing_audio_track(shared_data):
    data = (shared_data / "video/d0.mp4").read_bytes()  # d0 has no audio
    with pytest.raises(MediaError, match="no audio track"):
        decode_clip(data, fps=10, need_audio=True)
    with pytest.raises(MediaError, match="no audio"):
        decode_audio(data)
    with pytest.raises(MediaError, match="not an image|no video"):
        decode_image((shared_data / "voices/1688/1688-142285-0000.flac").read_bytes())
