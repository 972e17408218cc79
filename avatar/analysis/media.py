"""Decoding of uploads into frames (RGB arrays + timestamps) and 16 kHz mono float32 audio.

ffprobe/ffmpeg (Debian's ffmpeg) do the demuxing and decoding, so browser webm (VP8/VP9/Opus),
mp4/mov (H.264/AAC), wav, flac, mp3, ogg, jpg and png all go through one path. Every failure
(corrupt, empty, truncated, wrong type, over a limit) raises MediaError with a clear message.

Nothing in a file is trusted to bound the work it causes. A container's duration header may be
missing (MediaRecorder writes none) or false, so the length is measured by demuxing the packets
(no decoding) up to just past the limit; every ffmpeg call also stops reading at the limit, and
its output is read into a buffer of fixed size (frames × frame size, seconds × sample rate), so a
one-hour file costs no more than one at the limit. Temporary copies live in a private folder
(set_temp_dir, the instance's tmp/ in the app) and carry their process id, so a killed
process's leftovers are swept at the next start (sweep_temp_dir).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
IMAGE_CODECS = {"mjpeg", "png", "webp", "bmp", "tiff"}
TEMP_PREFIX = "avatar-media-"
_temp_dir: str | None = None  # None: the system's temporary folder


class MediaError(ValueError):
    """The media cannot be used; the message says why, for the user."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 64 * 1024 * 1024
    max_seconds: float = 60.0
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
    tags: dict = field(default_factory=dict)  # the container's metadata (e.g. the AIGC label), values cut at 4 KB


def _run(cmd: list[str], data: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, input=data, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise MediaError(f"{cmd[0]} is not installed (Debian package ffmpeg)") from exc
    except subprocess.TimeoutExpired as exc:
        raise MediaError("decoding took too long; the file may be damaged") from exc


class _Decoder:
    """An ffmpeg process whose raw output is read in fixed-size pieces: never more than asked
    for is held, and the process is killed at the deadline or when the reader stops early."""

    def __init__(self, cmd: list[str], timeout: float):
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL)
        except FileNotFoundError as exc:
            raise MediaError(f"{cmd[0]} is not installed (Debian package ffmpeg)") from exc
        self.timed_out = False
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.timed_out = True
        self.proc.kill()

    def read_into(self, buf: memoryview) -> int:
        """Fills buf as far as the output goes; returns the bytes read."""
        got = 0
        while got < len(buf):
            n = self.proc.stdout.readinto(buf[got:])
            if not n:
                break
            got += n
        if self.timed_out:
            raise MediaError("decoding took too long; the file may be damaged")
        return got

    def close(self) -> None:
        self._timer.cancel()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.stdout.close()
        self.proc.wait()

    def __enter__(self) -> "_Decoder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def set_temp_dir(path: str | os.PathLike | None) -> None:
    """Where MediaFile keeps its temporary copies (created 0700); None: the system default."""
    global _temp_dir
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)
    _temp_dir = None if path is None else str(path)


def sweep_temp_dir(path: str | os.PathLike, older_than_seconds: float = 24 * 3600) -> int:
    """Deletes temporary copies left by processes that are gone (killed mid-decode), and any
    older than older_than_seconds. Returns how many were deleted."""
    deleted = 0
    folder = Path(path)
    if not folder.is_dir():
        return 0
    now = time.time()
    for f in folder.glob(TEMP_PREFIX + "*"):
        pid = f.name[len(TEMP_PREFIX):].split("-", 1)[0]
        try:
            stale = not pid.isdigit() or not _alive(int(pid)) or now - f.stat().st_mtime > older_than_seconds
            if stale:
                f.unlink()
                deleted += 1
        except FileNotFoundError:
            pass
    return deleted


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class MediaFile:
    """An upload held in a private temporary file for ffmpeg (which needs to seek in mp4/mov)."""

    def __init__(self, data: bytes, limits: Limits = Limits()):
        if not data:
            raise MediaError("the file is empty")
        if len(data) > limits.max_bytes:
            raise MediaError(f"the file is too large ({len(data) // 1048576} MB; limit {limits.max_bytes // 1048576} MB)")
        self.limits = limits
        fd, self.path = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=_temp_dir)
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
        tags = fmt.get("tags") if isinstance(fmt.get("tags"), dict) else {}
        p = Probe(format_name=fmt.get("format_name", ""), duration=_f(fmt.get("duration")),
                  has_video=video is not None, has_audio=audio is not None,
                  tags={str(k)[:64]: str(v)[:4096] for k, v in list(tags.items())[:64]})
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
        if not p.is_image:
            # the header may be missing or lie: measure what the packets span, reading no further
            # than just past the limit
            measured = self._measured_seconds()
            if measured > self.limits.max_seconds:
                raise MediaError(f"the recording is too long (over {self.limits.max_seconds:.0f} s)")
            p.duration = max(min(p.duration, self.limits.max_seconds), measured)
        return p

    def _measured_seconds(self) -> float:
        """The time span of the packets up to limit + 1 s, by demuxing only (stream copy to a
        null output; cheap even for large files). Timestamps may be forged too: the decoders
        below are bounded by output size as well."""
        read = self.limits.max_seconds + 1.0
        out = _run(["ffmpeg", "-v", "error", "-nostdin", "-t", f"{read:.3f}", "-i", self.path, "-map", "0:v?",
                    "-map", "0:a?", "-c", "copy", "-f", "null", "-progress", "pipe:1", "-nostats", "-"],
                   timeout=30)
        times = [int(v) for v in _OUT_TIME.findall(out.stdout.decode("ascii", "replace")) if v.isdigit()]
        return max(times, default=0) / 1e6

    # -- video --------------------------------------------------------------------------------
    def _frame_decoder(self, fps: float | None, max_side: int, max_frames: int,
                       seconds: float | None) -> tuple[_Decoder, int, int, int]:
        p = self.probe
        if not p.has_video:
            raise MediaError("the file has no video")
        scale = min(1.0, max_side / max(p.width, p.height))
        w, h = _even(p.width * scale), _even(p.height * scale)
        vf = [f"scale={w}:{h}:flags=area"]
        seconds = min(seconds or self.limits.max_seconds, self.limits.max_seconds)
        if fps:
            vf.insert(0, f"fps={fps}")
        max_frames = min(max_frames, int(np.ceil(seconds * (fps or min(p.fps or 30.0, 60.0)))) + 1)
        cmd = ["ffmpeg", "-v", "error", "-nostdin", "-t", f"{seconds + 0.5:.3f}", "-i", self.path, "-an",
               "-vf", ",".join(vf), "-frames:v", str(max_frames), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        return _Decoder(cmd, timeout=120), w, h, max_frames

    def frames(self, fps: float | None = None, max_side: int = 640, max_frames: int = 2000,
               seconds: float | None = None) -> Frames:
        """Decoded frames, optionally resampled to fps, scaled so the longer side ≤ max_side;
        at most max_frames, and no more than the limit's (or `seconds`') worth."""
        images = [frame for _, frame in self.iter_frames(fps, max_side, seconds, max_frames)]
        if not images:
            raise MediaError("no picture could be decoded; the file may be damaged or truncated")
        rate = fps or self.probe.fps or 25.0
        times = np.arange(len(images), dtype=np.float64) / rate
        return Frames(images=images, times=times, fps=self.probe.fps or rate)

    def iter_frames(self, fps: float | None, max_side: int = 640, seconds: float | None = None,
                    max_frames: int = 1 << 30):
        """(time, RGB frame) one at a time, read straight from ffmpeg into each frame's array:
        an analysis that keeps a summary per frame holds one frame whatever the length read."""
        dec, w, h, max_frames = self._frame_decoder(fps, max_side, max_frames, seconds)
        rate = fps or self.probe.fps or 25.0
        with dec:
            for i in range(max_frames):
                frame = np.empty((h, w, 3), np.uint8)
                if dec.read_into(memoryview(frame.reshape(-1))) < frame.size:
                    return
                yield i / rate, frame

    def clip(self, fps: float, max_side: int = 512, need_audio: bool = False,
             seconds: float | None = None) -> tuple[Frames, np.ndarray | None]:
        """Frames at fps and the audio (None when absent; MediaError when need_audio), decoded
        by two ffmpeg processes at once; both stop at the limit (or `seconds`)."""
        from concurrent.futures import ThreadPoolExecutor

        if need_audio and not self.probe.has_audio:
            raise MediaError("the recording has no audio track")
        with ThreadPoolExecutor(1) as pool:
            audio = pool.submit(self.audio, seconds) if self.probe.has_audio else None
            frames = self.frames(fps=fps, max_side=max_side, seconds=seconds)
            return frames, (audio.result() if audio else None)

    def cut(self, start: float, seconds: float, fps: float = 25, max_side: int = 720) -> bytes:
        """The part from `start` lasting `seconds`, re-encoded as a plain MP4 (H.264 CRF 18 at fps,
        the longer side ≤ max_side, AAC): what is kept of a recording after its check."""
        p = self.probe
        if not (p.has_video and p.has_audio):
            raise MediaError("the recording needs both picture and sound")
        start = max(0.0, start)
        seconds = min(seconds, self.limits.max_seconds)
        scale = min(1.0, max_side / max(p.width, p.height))
        fd, out = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=".mp4", dir=_temp_dir)
        os.close(fd)
        try:
            res = _run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-ss", f"{start:.3f}", "-t", f"{seconds:.3f}",
                        "-i", self.path, "-map", "0:v:0", "-map", "0:a:0",
                        "-vf", f"fps={fps},scale={_even(p.width * scale)}:{_even(p.height * scale)}:flags=area",
                        "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
                        "-c:a", "aac", "-b:a", "128k", "-ac", "1", "-movflags", "+faststart", out], timeout=120)
            if res.returncode != 0:
                raise MediaError("the recording could not be cut; the file may be damaged")
            with open(out, "rb") as fh:
                return fh.read()
        finally:
            os.unlink(out)

    # -- audio --------------------------------------------------------------------------------
    def audio(self, seconds: float | None = None) -> np.ndarray:
        """The audio as 16 kHz mono float32 in [-1, 1]: at most the limit's (or `seconds`') worth."""
        if not self.probe.has_audio:
            raise MediaError("the file has no audio track")
        seconds = min(seconds or self.limits.max_seconds, self.limits.max_seconds)
        buf = np.empty(int(seconds * SAMPLE_RATE), np.float32)
        cmd = ["ffmpeg", "-v", "error", "-nostdin", "-t", f"{seconds + 0.5:.3f}", "-i", self.path, "-vn", "-ac", "1",
               "-ar", str(SAMPLE_RATE), "-f", "f32le", "pipe:1"]
        with _Decoder(cmd, timeout=120) as dec:
            got = dec.read_into(memoryview(buf).cast("B"))
        samples = buf[: got // 4]
        if samples.size == 0:
            raise MediaError("no sound could be decoded; the file may be damaged or truncated")
        return np.clip(samples, -1.0, 1.0)


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


_OUT_TIME = re.compile(r"out_time_us=(\d+)")


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
