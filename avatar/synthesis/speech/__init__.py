"""Speech backends: one interface, a registry, backends that know nothing of Flask or the DB.

`choose(xtts_dir)` picks XTTS-v2 when its model folder is complete and the offline default
(espeak-ng or Kokoro-82M + WORLD speaker adaptation) otherwise; each backend has
`synthesize(grant, text)`."""
from __future__ import annotations

import hashlib
import threading
import weakref
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

import numpy as np

OUTPUT_SR = 24000
T = TypeVar("T")


class ReferenceCache(Generic[T]):
    """What is built from an enrolled reference (a voice recording as samples, or encoded footage
    as bytes), kept per process by the reference's SHA-256 and the build's other arguments (the
    reference itself is not kept), the oldest dropped beyond `keep`."""

    _all: weakref.WeakSet[ReferenceCache] = weakref.WeakSet()

    def __init__(self, build: Callable[..., T], keep: int):
        self.build, self.keep = build, keep
        self._items: dict[str, T] = {}
        self._lock = threading.Lock()
        ReferenceCache._all.add(self)

    @classmethod
    def forget_all(cls) -> None:
        """Empties every such cache of this process, as a new worker process starts (benchmarks
        timing a voice's first use)."""
        for cache in list(cls._all):
            with cache._lock:
                cache._items.clear()

    @staticmethod
    def _key(reference: np.ndarray | bytes, args: tuple) -> str:
        data = reference if isinstance(reference, bytes) else np.asarray(reference, np.float32).tobytes()
        return hashlib.sha256(data).hexdigest() + (repr(args) if args else "")

    def put(self, reference: np.ndarray | bytes, item: T, *args) -> None:
        """Keeps an item built elsewhere (e.g. loaded from what enrollment stored) for reference."""
        with self._lock:
            self._items[self._key(reference, args)] = item
            while len(self._items) > self.keep:
                self._items.pop(next(iter(self._items)))

    def get(self, reference: np.ndarray | bytes, *args) -> T:
        key = self._key(reference, args)
        with self._lock:
            item = self._items.get(key)
        if item is None:
            item = self.build(reference, *args)  # outside the lock: a slow build does not hold up others
            self.put(reference, item, *args)
        return item


@dataclass
class Speech:
    audio: np.ndarray  # float32 mono at OUTPUT_SR
    sr: int
    text: str = ""  # what it says: a talking head aligns these words to the audio for its lips
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
