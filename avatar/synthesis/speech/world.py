"""WORLD (pyworld) analysis as the offline voice and its frame selection use it: pitch by DIO refined
by StoneMask, spectral envelope by CheapTrick, aperiodicity by D4C, every FRAME_MS. An enrolled
voice is analysed once for both (enrolled), a source speech once for its adaptation and its alignment
(analysed)."""
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


def enrolled(reference: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """analyse() of an enrolled voice, kept for the last one per process: the offline voice's
    VoiceModel and its FrameBank are built from the same reference one after the other (about 1 s
    for 30 s of speech). Callers must not change the arrays."""
    return _ENROLLED.get(reference, sr)


_ENROLLED: ReferenceCache[tuple[np.ndarray, np.ndarray, np.ndarray]] = ReferenceCache(analyse, keep=1)


def analysed(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """analyse(), kept for the last speech per process: the offline voice adapts its source and
    aligns it slowed down (frame_selection.source_phones) from one analysis (about 0.9 s for 10 s
    of speech on 2 cores). Callers must not change the arrays."""
    return _ANALYSED.get(x, sr)


_ANALYSED: ReferenceCache[tuple[np.ndarray, np.ndarray, np.ndarray]] = ReferenceCache(analyse, keep=1)
