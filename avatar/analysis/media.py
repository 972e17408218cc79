"""Decoding of uploads into frames (RGB arrays + timestamps) and 16 kHz mono float32 audio.

ffprobe/ffmpeg (Debian's ffmpeg) do the demuxing and decoding, so browser webm (VP8/VP9/Opus),
mp4/mov (H.264/AAC), wav, flac, mp3, ogg, jpg and png all go through one path. Every failure
(corrupt, empty, truncated, wrong type, over a limit) raises MediaError with a clear message.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16000
IMAGE_CODECS = {"mjpeg", "png", "webp", "bmp", "tiff"}


class MediaError(ValueError):
    """The media cannot be used; the message says why, for the user."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 64 * 1024 * 1024
    max_seconds: float = 60.0
    min_seconds: float = 0.0
    max_pixels: int = 1920 * 1080
    max_side: int = 4096


@dataclass
class Frames:
    images: list[np.ndarray]  # RGB uint8, H×W×3
    times: np.ndarray  # seconds, float64
    fps: float  # of the source

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class Probe:
    format_name: str
    duration: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    video_codec: str = ""
    audio_codec: str = ""
    is_image: bool = False
    extra: dict = field(default_factory=dict)


def _run(cmd: list[str], data: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, input=data, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise MediaError(f"{cmd[0]} is not installed (Debian package ffmpeg)") from exc
    except subprocess.TimeoutExpired as exc:
        raise MediaError("decoding took too long; the file may be damaged") from exc


class MediaFile:
    """An upload held in a private temporary file for ffmpeg (which needs to seek in mp4/mov)."""

    def __init__(self, data: bytes, limits: Limits = Limits()):
        if not data:
            raise MediaError("the file is empty")
        if len(data) > limits.max_bytes:
            raise MediaError(f"the file is too large ({len(data) // 1048576} MB; limit {limits.max_bytes // 1048576} MB)")
        self.limits = limits
        fd, self.path = tempfile.mkstemp(prefix="avatar-media-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            self.probe = self._probe()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "MediaFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _probe(self) -> Probe:
        out = _run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", self.path])
        if out.returncode != 0:
            raise MediaError("not a readable audio, video or image file")
        info = json.loads(out.stdout or b"{}")
        streams = info.get("streams", [])
        fmt = info.get("format", {})
        video = next((s for s in streams if s.get("codec_type") == "video"), None)
        audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
        if video is None and audio is None:
            raise MediaError("the file has no audio or video")
        p = Probe(format_name=fmt.get("format_name", ""), duration=_f(fmt.get("duration")),
                  has_video=video is not None, has_audio=audio is not None)
        if video is not None:
            p.width, p.height = int(video.get("width") or 0), int(video.get("height") or 0)
            p.video_codec = video.get("codec_name", "")
            p.fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
            p.is_image = p.video_codec in IMAGE_CODECS and (p.duration <= 0.05 or "image" in p.format_name
                                                            or "_pipe" in p.format_name)
            if not p.duration:
                p.duration = _f(video.get("duration"))
            if p.width <= 0 or p.height <= 0:
                raise MediaError("the video has no picture size; the file may be damaged")
            if p.width * p.height > self.limits.max_pixels * (4 if p.is_image else 1) or max(p.width, p.height) > self.limits.max_side:
                raise MediaError(f"the picture is too large ({p.width}×{p.height})")
        if audio is not None:
            p.audio_codec = audio.get("codec_name", "")
            if not p.duration:
                p.duration = _f(audio.get("duration"))
        if p.duration > self.limits.max_seconds:
            raise MediaError(f"the recording is too long ({p.duration:.0f} s; limit {self.limits.max_seconds:.0f} s)")
        return p

    # -- video --------------------------------------------------------------------------------
    def frames(self, fps: float | None = None, max_side: int = 640, max_frames: int = 2000) -> Frames:
        """Decoded frames, optionally resampled to fps, scaled so the longer side ≤ max_side."""
        p = self.probe
        if not p.has_video:
            raise MediaError("the file has no video")
        scale = min(1.0, max_side / max(p.width, p.height))
        w, h = _even(p.width * scale), _even(p.height * scale)
        vf = [f"scale={w}:{h}:flags=area"]
        if fps:
            vf.insert(0, f"fps={fps}")
        cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", self.path, "-an", "-vf", ",".join(vf),
               "-frames:v", str(max_frames), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        out = _run(cmd, timeout=120)
        frame_bytes = w * h * 3
        n = len(out.stdout) // frame_bytes
        if n == 0:
            raise MediaError("no picture could be decoded; the file may be damaged or truncated")
        arr = np.frombuffer(out.stdout[: n * frame_bytes], dtype=np.uint8).reshape(n, h, w, 3)
        rate = fps or p.fps or 25.0
        times = np.arange(n, dtype=np.float64) / rate
        return Frames(images=list(arr), times=times, fps=p.fps or rate)

    def clip(self, fps: float, max_side: int = 512, need_audio: bool = False) -> tuple[Frames, np.ndarray | None]:
        """Frames at fps and the audio (None when absent; MediaError when need_audio), decoded
        by two ffmpeg processes at once."""
        from concurrent.futures import ThreadPoolExecutor

        if need_audio and not self.probe.has_audio:
            raise MediaError("the recording has no audio track")
        with ThreadPoolExecutor(1) as pool:
            audio = pool.submit(self.audio) if self.probe.has_audio else None
            frames = self.frames(fps=fps, max_side=max_side)
            return frames, (audio.result() if audio else None)

    # -- audio --------------------------------------------------------------------------------
    def audio(self) -> np.ndarray:
        """The audio as 16 kHz mono float32 in [-1, 1]."""
        if not self.probe.has_audio:
            raise MediaError("the file has no audio track")
        out = _run(["ffmpeg", "-v", "error", "-nostdin", "-i", self.path, "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE),
                    "-f", "f32le", "pipe:1"], timeout=120)
        samples = np.frombuffer(out.stdout[: len(out.stdout) // 4 * 4], dtype=np.float32)
        if samples.size == 0:
            raise MediaError("no sound could be decoded; the file may be damaged or truncated")
        return np.clip(samples, -1.0, 1.0).copy()


def decode_clip(data: bytes, fps: float, max_side: int = 512, limits: Limits = Limits(),
                need_audio: bool = False) -> tuple[Frames, np.ndarray | None, Probe]:
    """Frames at fps, the audio and the probe of an upload (see MediaFile.clip)."""
    with MediaFile(data, limits) as mf:
        frames, audio = mf.clip(fps, max_side, need_audio)
        return frames, audio, mf.probe


def decode_image(data: bytes, limits: Limits = Limits(), max_side: int = 1280) -> np.ndarray:
    """One RGB image (the first frame of whatever was sent)."""
    with MediaFile(data, limits) as mf:
        if not mf.probe.has_video:
            raise MediaError("the file is not an image")
        return mf.frames(max_side=max_side, max_frames=1).images[0]


def decode_audio(data: bytes, limits: Limits = Limits()) -> np.ndarray:
    with MediaFile(data, limits) as mf:
        return mf.audio()


def wav_bytes(audio: np.ndarray, sr: int = 16000) -> bytes:
    """16-bit PCM WAV of a mono float signal (the inverse of decode_audio)."""
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _f(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def _rate(v) -> float:
    if not v or v == "0/0":
        return 0.0
    num, _, den = str(v).partition("/")
    try:
        return float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return 0.0


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)
