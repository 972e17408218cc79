"""Writes avatar/synthesis/speech/kokoro_style_templates.npz: each Kokoro style's voice template
(offline.style_templates), keyed by offline.style_key, so that a process choosing the style nearest an
enrolled voice need not hear every style first (about 27 s on 2 cores). Run it again when the Kokoro
styles, the probe sentence or the speaker encoder change: nearest_style ignores a file whose key
does not match and hears the styles itself. Prints JSON."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from avatar.synthesis.speech import kokoro, offline  # noqa: E402


def main() -> None:
    t0 = time.time()
    styles = kokoro.get_model().styles
    templates = offline.style_templates(styles)
    np.savez_compressed(offline.STYLE_TEMPLATES_FILE, key=np.array(offline.style_key(styles)), **templates)
    print(json.dumps({"written": str(offline.STYLE_TEMPLATES_FILE), "styles": sorted(templates),
                      "bytes": offline.STYLE_TEMPLATES_FILE.stat().st_size, "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
