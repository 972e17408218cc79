"""WORLD (pyworld) analysis as the offline voice and its frame selection use it: pitch by DIO refined
by StoneMask, spectral envelope by CheapTrick, aperiodicity by D4C, every FRAME_MS. An enrolled
voice, and a source speech, are each analysed once for their two uses (analysed)."""
from __future__ import annotations

import numpy as np

from avatar.synthesis.speech import ReferenceCache

FRAME_MS = 5.0


def analyse(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(f0, spectral envelope, aperiodicity) of mono audio; f0 is 0 where unvoiced."""
    import pyworld as pw

    x = np.asarray(x, np.float64)
    f0, t = pw.dio(x, sr, frame_period=FRAME_MS, f0_floor=60, f0_ceil=500)
    f0 = pw.stonemask(x, f0, t, sr)
    return f0, pw.cheaptrick(x, f0, t, sr), pw.d4c(x, f0, t, sr)


def analysed(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """analyse(), the last two speeches kept per process: an enrolled voice, which the offline voice's
    VoiceModel and its FrameBank are built from one after the other (about 1 s for 30 s of speech),
    and a source speech, which it adapts and aligns slowed down (frame_selection.source_phones; about
    0.9 s for 10 s of speech on 2 cores). Callers must not change the arrays."""
    return _ANALYSED.get(x, sr)


_ANALYSED: ReferenceCache[tuple[np.ndarray, np.ndarray, np.ndarray]] = ReferenceCache(analyse, keep=2)
