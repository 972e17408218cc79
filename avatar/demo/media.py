"""Builds test and attack media from ../shared/data with ffmpeg and numpy: stills turned into
videos (pans, zooms, a print held in a hand), clips cut, muxed, shuffled or replayed (on a screen)."""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

from avatar.demo.footage import FFMPEG, SR, assemble_capture, digit_audio, encode_frames  # noqa: F401


def run(cmd: list[str]) -> None:
    subprocess.run(FFMPEG + cmd, check=True, capture_output=True)


class SensorNoise:
    """Fresh Gaussian sensor noise of sigma grey levels on every frame, rounded to whole levels and
    added with saturation. It draws from OpenCV's generator of the calling thread, which it seeds:
    a clip built from one SensorNoise, with no other draw from that generator in between, has the
    same frames for the same seed. About 5 times as fast as numpy's float64 normal draws, which made
    up most of the time of building a 720p test clip."""

    def __init__(self, sigma: float, seed: int = 0):
        self.sigma = sigma
        cv2.setRNGSeed(seed)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        frame = np.clip(frame, 0, 255).astype(np.uint8) if frame.dtype != np.uint8 else frame
        if not self.sigma:
            return frame.copy()
        noise = np.empty(frame.shape, np.int16)
        cv2.randn(noise.reshape(frame.shape[0], -1), 0, self.sigma)  # one channel: all of them noisy
        return cv2.add(frame, noise, dtype=cv2.CV_8U)


def read_rgb(path: Path, max_side: int = 640) -> np.ndarray:
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    s = min(1.0, max_side / max(img.shape[:2]))
    return cv2.resize(img, (int(img.shape[1] * s) // 2 * 2, int(img.shape[0] * s) // 2 * 2), interpolation=cv2.INTER_AREA)


def still_to_video(img: np.ndarray, out: Path, seconds: float = 5, fps: float = 25, motion: str = "pan",
                   size: int = 512, seed: int = 0, audio: Path | None = None) -> Path:
    """A still made into a size×size video (see moved_still)."""
    frames = [cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA)
              for f in moved_still(img, seconds, fps, motion, seed)]
    return encode_frames(frames, out, fps, audio)


def moved_still(img: np.ndarray, seconds: float = 5, fps: float = 25, motion: str = "pan",
                seed: int = 0) -> list[np.ndarray]:
    """Frames of a still moved as 'static', 'pan', 'zoom', 'shake' (hand-held jitter) or 'print'
    (a printed photo tilted in a hand: changing perspective), with sensor noise on every frame."""
    rng = np.random.default_rng(seed)
    noise = SensorNoise(2.0, seed)
    h, w = img.shape[:2]
    n = int(seconds * fps)
    frames = []
    for i in range(n):
        t = i / max(n - 1, 1)
        if motion == "static":
            m = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
        elif motion == "pan":
            m = _affine(1.1, 0, -0.05 * w + 0.1 * w * t, 0.02 * h * np.sin(2 * np.pi * t), w, h)
        elif motion == "zoom":
            m = _affine(1.0 + 0.25 * t, 0, 0, 0, w, h)
        elif motion == "shake":
            m = _affine(1.08 + 0.01 * rng.standard_normal(), 2 * rng.standard_normal(),
                        6 * rng.standard_normal(), 6 * rng.standard_normal(), w, h)
        elif motion == "print":
            a = 0.12 * np.sin(2 * np.pi * t * 1.3)
            b = 0.08 * np.sin(2 * np.pi * t * 0.7 + 1)
            src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
            dst = np.float32([[w * (0.05 + a), h * (0.05 + b)], [w * (0.95 + a * 0.5), h * (0.05 - b)],
                              [w * (0.95 - a * 0.5), h * (0.95 + b)], [w * (0.05 - a), h * (0.95 - b * 0.5)]])
            m = cv2.getPerspectiveTransform(src, dst)
        else:
            raise ValueError(motion)
        frame = cv2.warpPerspective(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        frames.append(noise(frame))
    return frames


def screen_replay(frames: list[np.ndarray], seed: int, moire: float = 0.08,
                  grids: tuple = ((0.31, 0.07), (0.29, -0.05))) -> list[np.ndarray]:
    """A video shown on a monitor and filmed: slight perspective, moiré of `moire` contrast from the
    pixel grid beating with the sensor (two gratings of `grids` cycles per pixel), a moving glare,
    softer focus and a gamma shift."""
    noise = SensorNoise(2.0, seed)
    h, w = frames[0].shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for i, f in enumerate(frames):
        t = i / len(frames)
        a = 0.03 * np.sin(2 * np.pi * t)
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        dst = np.float32([[w * (0.04 + a), h * 0.04], [w * 0.96, h * (0.03 - a)], [w * (0.97 - a), h * 0.97],
                          [w * 0.03, h * (0.96 + a)]])
        img = cv2.warpPerspective(f, cv2.getPerspectiveTransform(src, dst), (w, h), borderValue=(20, 20, 20))
        img = cv2.GaussianBlur(img, (3, 3), 0.8).astype(np.float32)
        (ax, ay), (bx, by) = grids
        pattern = 1 + moire * np.sin(2 * np.pi * (xx * ax + yy * ay + t * 3)) * np.sin(2 * np.pi * (xx * bx + yy * by))
        cx, cy = w * (0.3 + 0.3 * t), h * 0.25
        glare = 90 * np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.12 * w) ** 2)))
        img = 255 * (np.clip(img * pattern[..., None] + glare[..., None], 0, 255) / 255) ** 0.9
        out.append(noise(img))
    return out


def _affine(scale: float, angle: float, tx: float, ty: float, w: int, h: int) -> np.ndarray:
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += (tx, ty)
    return np.vstack([m, [0, 0, 1]])


def cut(src: Path, out: Path, start: float, duration: float, size: int | None = None, loop: bool = False) -> Path:
    """duration seconds of src from start; loop: played again from its start when it ends first."""
    vf = ["-vf", f"scale={size}:{size}"] if size else []
    looped = ["-stream_loop", "-1"] if loop else []
    run([*looped, "-ss", str(start), "-i", str(src), "-t", str(duration), *vf, "-c:v", "libx264", "-preset", "veryfast",
         "-crf", "20", "-c:a", "aac", str(out)])
    return out


def extract_audio(src: Path, out: Path, rate: int = 16000) -> Path:
    run(["-i", str(src), "-vn", "-ac", "1", "-ar", str(rate), str(out)])
    return out


def frames_of(src: Path, fps: float = 25, size: int = 512) -> list[np.ndarray]:
    proc = subprocess.run(FFMPEG + ["-i", str(src), "-vf", f"fps={fps},scale={size}:{size}", "-f", "rawvideo",
                                    "-pix_fmt", "rgb24", "pipe:1"], check=True, capture_output=True)
    return list(np.frombuffer(proc.stdout, np.uint8).reshape(-1, size, size, 3))


def native_frames(src: Path, fps: float = 25) -> list[np.ndarray]:
    """Every frame of a clip at its own size."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0", str(src)], check=True, capture_output=True, text=True)
    w, h = (int(v) for v in probe.stdout.strip().split(",")[:2])
    proc = subprocess.run(FFMPEG + ["-i", str(src), "-vf", f"fps={fps}", "-f", "rawvideo", "-pix_fmt", "rgb24",
                                    "pipe:1"], check=True, capture_output=True)
    return list(np.frombuffer(proc.stdout, np.uint8).reshape(-1, h, w, 3))


def webcam_framing(frames: list[np.ndarray], face_box: tuple[int, int, int, int], size: tuple[int, int] = (640, 480),
                   face_height: float = 0.3, noise: float = 3.0, seed: int = 0) -> list[np.ndarray]:
    """A clip placed as a webcam would frame the person: scaled so the face (face_box, in the
    clip's first frame) is face_height of the frame height, centred a little above the middle,
    over a static blurred background, with fresh sensor noise on every frame."""
    sensor = SensorNoise(noise, seed)
    W, H = size
    x0, y0, x1, y1 = face_box
    s = face_height * H / (y1 - y0)
    h, w = frames[0].shape[:2]
    sw, sh = int(w * s), int(h * s)
    ox, oy = int(W / 2 - (x0 + x1) / 2 * s), int(0.45 * H - (y0 + y1) / 2 * s)
    background = cv2.GaussianBlur(cv2.resize(frames[0], (W, H)), (0, 0), 25)
    X0, Y0, X1, Y1 = max(ox, 0), max(oy, 0), min(ox + sw, W), min(oy + sh, H)
    out = []
    for f in frames:
        canvas = background.copy()
        scaled = cv2.resize(f, (sw, sh), interpolation=cv2.INTER_LINEAR if s > 1 else cv2.INTER_AREA)
        canvas[Y0:Y1, X0:X1] = scaled[Y0 - oy:Y1 - oy, X0 - ox:X1 - ox]
        out.append(sensor(canvas))
    return out


def tmpdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="avatar-test-"))


def codec_round_trip(audio: np.ndarray, codec: str, bitrate: str, sr: int = 16000) -> np.ndarray:
    """Mono float32 audio through a lossy codec and back: "aac" as in MP4 uploads, "libopus" as in
    the browser's WebM (the AAC encoder's priming adds ~1024 samples at the start)."""
    fmt, demux = {"aac": ("adts", "aac"), "libopus": ("ogg", "ogg")}[codec]
    coded = subprocess.run(["ffmpeg", "-v", "error", "-f", "f32le", "-ar", str(sr), "-ac", "1", "-i", "pipe:",
                            "-c:a", codec, "-b:a", bitrate, "-f", fmt, "pipe:"],
                           input=np.asarray(audio, np.float32).tobytes(), capture_output=True, check=True).stdout
    raw = subprocess.run(["ffmpeg", "-v", "error", "-f", demux, "-i", "pipe:", "-f", "f32le", "-ar", str(sr), "-ac", "1",
                          "pipe:"], input=coded, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.float32).copy()


def label_cropped(src: Path, out: Path, crf: int, audio_bitrate: str) -> Path:
    """One of our outputs with its visible label cut off (the top 60 rows), scaled to 360 px wide and
    re-encoded (H.264 at crf, AAC at audio_bitrate): the crop moves the video mark's grid."""
    run(["-i", str(src), "-vf", "crop=iw:ih-60:0:60,scale=360:-2", "-c:v", "libx264", "-crf", str(crf),
         "-c:a", "aac", "-b:a", audio_bitrate, str(out)])
    return out


def code_audio(shared_data: Path, code: str, speaker: str, rng) -> np.ndarray:
    """A code said one digit at a time by one 8 kHz speaker of digits/ (16 kHz, peak 0.5), random
    pauses between the digits."""
    import librosa
    import soundfile as sf

    parts = [np.zeros(4000, np.float32)]
    for c in code:
        w, sr = sf.read(shared_data / "digits" / f"{c}_{speaker}_{rng.integers(10)}.wav", dtype="float32")
        parts += [librosa.resample(w, orig_sr=sr, target_sr=SR), np.zeros(int(rng.integers(1600, 4800)), np.float32)]
    a = np.concatenate(parts)
    return a / np.abs(a).max() * 0.5


def read_lead(shared_data: Path, rng) -> np.ndarray:
    """3–5 s of real read speech (a LibriSpeech sentence) in the digits' telephone band: the words
    a person reads before the code, on the same channel as the code."""
    import soundfile as sf
    from scipy.signal import resample_poly

    files = sorted((shared_data / "voices" / "singles").glob("*.flac"))
    w, sr = sf.read(files[int(rng.integers(len(files)))], dtype="float32")
    w = resample_poly(resample_poly(w[: int(rng.uniform(3, 5) * sr)], 1, 2), 2, 1).astype(np.float32)
    return np.concatenate([w / (np.abs(w).max() + 1e-6) * 0.5, np.zeros(3200, np.float32)])
