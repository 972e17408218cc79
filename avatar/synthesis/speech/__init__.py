"""Speech backends: one interface, a registry, backends that know nothing of Flask or the DB.

`choose(xtts_dir)` picks XTTS-v2 when its model folder is complete and the offline default
(espeak-ng or Kokoro-82M + WORLD speaker adaptation) otherwise; each backend has
`synthesize(grant, text)`."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

OUTPUT_SR = 24000


@dataclass
class Speech:
    audio: np.ndarray  # float32 mono at OUTPUT_SR
    sr: int
    words: list[dict] = field(default_factory=list)  # [{"word", "start", "end"}] seconds, for lip sync
    backend: str = ""

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sr


def choose(xtts_dir, latents_cache=None, source: str = "espeak"):
    """XTTS-v2 when its model folder is complete, else the offline default from `source`."""
    from pathlib import Path

    from avatar.synthesis.speech import xtts

    if xtts_dir and xtts.available(Path(xtts_dir)):
        return xtts.XttsSpeech(Path(xtts_dir), latents_cache)
    from avatar.synthesis.speech.offline import OfflineSpeech

    return OfflineSpeech(source)
