"""From a Speech (and video frames) to labeled files: audio watermark, visible mark, video
watermark, H.264 + AAC encoding. Shared by every backend."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from avatar.analysis.media import wav_bytes
from avatar.synthesis.label import aigc, audio_mark, video_mark, visible
from avatar.synthesis.speech import Speech
from avatar.synthesis.video import FPS


class RenderError(Exception):
    pass


def labeled_audio(speech: Speech, watermark_id: str, key: bytes) -> np.ndarray:
    if speech.sr != audio_mark.SR:
        raise RenderError(f"speech must be at {audio_mark.SR} Hz")
    return audio_mark.embed(speech.audio, speech.sr, watermark_id, key)


def render_speech(speech: Speech, watermark_id: str, key: bytes, label: dict | None = None) -> bytes:
    """24 kHz 16-bit WAV with the audio watermark (key: the installation's watermark key) and, when
    given, the AIGC implicit label (label/aigc.py) in a LIST/INFO chunk."""
    wav = wav_bytes(labeled_audio(speech, watermark_id, key), speech.sr)
    return aigc.wav_with_label(wav, label) if label is not None else wav


def render_video(frames: Iterable[np.ndarray], speech: Speech, watermark_id: str, key: bytes, size: int = 512,
                 fps: int = FPS,
                 on_frame: Callable[[int], None] | None = None, title: str = "AI-generated",
                 label: dict | None = None) -> bytes:
    """H.264 (yuv420p) + AAC MP4: every frame stamped and watermarked, the speech watermarked, and
    the AIGC implicit label (label/aigc.py), when given, as the metadata tag AIGC."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RenderError("ffmpeg is not installed")
    with tempfile.TemporaryDirectory(prefix="avatar-render-") as tmp:
        wav, mp4 = Path(tmp) / "speech.wav", Path(tmp) / "out.mp4"
        wav.write_bytes(render_speech(speech, watermark_id, key))
        cmd = [ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}",
               "-r", str(fps), "-i", "-", "-i", str(wav), "-map", "0:v", "-map", "1:a", "-c:v", "libx264",
               "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
               "-shortest", "-movflags", "+faststart+use_metadata_tags", "-metadata", f"title={title}",
               "-metadata", "comment=AI-generated (trainedAlgorithmicMedia); verify with `avatar verify`",
               *(["-metadata", f"AIGC={aigc.to_text(label)}"] if label is not None else []), str(mp4)]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for i, frame in enumerate(frames):
                if frame.shape[:2] != (size, size):
                    raise RenderError("frame size does not match")
                marked = video_mark.embed(visible.stamp(frame), watermark_id, i / fps, key)
                proc.stdin.write(np.ascontiguousarray(marked).tobytes())
                if on_frame is not None:
                    on_frame(i)
            proc.stdin.close()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        err = proc.stderr.read().decode(errors="replace")
        if proc.wait() != 0:
            raise RenderError(f"ffmpeg failed: {err[:300]}")
        return mp4.read_bytes()
