"""Audio watermark on short clips: detection after MP3 64 kbit/s by clip length, and false reads
on unmarked audio and on audio marked by another installation (another key). Prints JSON."""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from avatar.analysis.media import decode_audio  # noqa: E402
from avatar.synthesis.label import audio_mark, payload  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "voices"
KEY, OTHER = os.urandom(32), os.urandom(32)  # this installation's key, and another's


def mp3(x: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    sf.write(buf, x, 24000, format="WAV")
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-b:a", "64k", "-f", "mp3", "pipe:1"],
                         input=buf.getvalue(), capture_output=True, check=True).stdout
    return decode_audio(out)


def main() -> None:
    files = sorted(p for p in DATA.glob("*/*.flac") if p.parent.name != "singles")[::2][:25]
    result = {"clips": len(files), "codec": "mp3 64k"}
    for seconds in (3, 5, 8, 12):
        hits = misses_plain = foreign = 0
        for f in files:
            speech = resample_poly(decode_audio(f.read_bytes()), 3, 2).astype(np.float32)[: seconds * 24000]
            wm = payload.new_watermark_id()
            hits += audio_mark.detect(mp3(audio_mark.embed(speech, 24000, wm, KEY)), 16000, KEY)["watermark_id"] == wm
            misses_plain += audio_mark.detect(mp3(speech), 16000, KEY)["found"]
            foreign += audio_mark.detect(mp3(audio_mark.embed(speech, 24000, wm, OTHER)), 16000, KEY)["found"]
        result[f"{seconds}s"] = {"detected": hits, "false_on_unmarked": misses_plain,
                                 "read_from_another_installation": foreign}
    singles = sorted((DATA / "singles").glob("*.flac"))
    result["false_on_125_unmarked_utterances"] = sum(
        audio_mark.detect(decode_audio(f.read_bytes()), 16000, KEY)["found"] for f in singles)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
