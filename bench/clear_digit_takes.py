"""Writes avatar/demo/clear_digit_takes.json: for every speaker and digit of ../shared/data/digits/, the
order in which the demo footage (avatar.demo.footage.digit_audio) takes its recordings, those Whisper
hears right on their own first (footage.hear_takes), keyed by the SHA-256 of the recordings and by the
recognizer. A process then need not hear the ten takes of each digit of a code it assembles (about 9 s
of Whisper per digit on a core). Run it again when digits/ or the recognizer changes: clear_takes
ignores an entry whose key does not match and hears the takes itself. Prints JSON."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from avatar.demo import footage  # noqa: E402

DIGITS = Path(__file__).resolve().parents[2] / "shared" / "data" / "digits"


def main() -> None:
    t0 = time.time()
    speakers = sorted({p.stem.split("_")[1] for p in DIGITS.glob("*_*_*.wav")})
    takes = {f"{speaker}/{d}": {"sha256": footage.takes_key(DIGITS, str(d), speaker),
                                "order": footage.hear_takes(DIGITS, str(d), speaker)}
             for speaker in speakers for d in range(10)}
    entries = ",\n".join(f"  {json.dumps(name)}: {json.dumps(entry)}" for name, entry in takes.items())
    footage.CLEAR_TAKES_FILE.write_text(  # one entry per line
        f'{{\n "recognizer": {json.dumps(footage.recognizer_id())},\n "takes": {{\n{entries}\n }}\n}}\n')
    print(json.dumps({"written": str(footage.CLEAR_TAKES_FILE), "speakers": speakers, "entries": len(takes),
                      "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
