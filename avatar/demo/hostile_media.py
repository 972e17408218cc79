"""Hostile uploads, made with ffmpeg: long recordings whose container hides their length (as
MediaRecorder's webm does, or with the header voided on purpose), and JSON nested too deep.
Used by tests/test_hostile_uploads.py and bench/bench_hostile.py."""
from __future__ import annotations

import subprocess
from pathlib import Path

FFMPEG = ["ffmpeg", "-v", "error", "-nostdin", "-y"]


def void_duration(data: bytes) -> bytes:
    """The webm/mkv with its Segment Info Duration element overwritten by a Void element of the
    same size: players and probes then see no duration at all."""
    out = bytearray(data)
    i = out.find(b"\x44\x89")
    if i < 0 or out[i + 2] not in (0x84, 0x88):
        raise ValueError("no Duration element found")
    total = 3 + (out[i + 2] & 0x7F)
    out[i:i + total] = bytes([0xEC, 0x80 | (total - 2)]) + bytes(total - 2)
    return bytes(out)


def long_webm(out: Path, seconds: int, size: str = "640x480", fps: int = 5, void: bool = True) -> Path:
    """A VP8/Opus webm of `seconds` (a 10 s segment repeated by stream copy, so an hour takes a
    second to make): a still grey picture and a tone, a few MB. void: no duration header."""
    seg = out.with_suffix(".seg.webm")
    subprocess.run(FFMPEG + ["-f", "lavfi", "-i", f"color=c=gray:s={size}:r={fps}:d=10", "-f", "lavfi",
                             "-i", "sine=f=220:r=48000", "-t", "10", "-c:v", "libvpx", "-deadline", "realtime",
                             "-cpu-used", "8", "-b:v", "20k", "-c:a", "libopus", "-b:a", "6k", str(seg)],
                   check=True, capture_output=True)
    loops = max(1, -(-seconds // 10))
    subprocess.run(FFMPEG + ["-stream_loop", str(loops - 1), "-i", str(seg), "-c", "copy", str(out)],
                   check=True, capture_output=True)
    seg.unlink()
    if void:
        out.write_bytes(void_duration(out.read_bytes()))
    return out


def long_wav_lying_header(out: Path, seconds: int) -> Path:
    """A 16 kHz WAV of `seconds` whose RIFF and data sizes claim 1 s."""
    subprocess.run(FFMPEG + ["-f", "lavfi", "-i", f"sine=f=300:r=16000:d={seconds}", "-c:a", "pcm_s16le", str(out)],
                   check=True, capture_output=True)
    data = bytearray(out.read_bytes())
    j = data.find(b"data")
    data[4:8] = (36 + 32000).to_bytes(4, "little")
    data[j + 4:j + 8] = (32000).to_bytes(4, "little")
    out.write_bytes(bytes(data))
    return out


def nested_json(depth: int = 100_000) -> bytes:
    return b"[" * depth + b"]" * depth
