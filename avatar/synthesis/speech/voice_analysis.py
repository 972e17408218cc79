"""What the offline voice learns from a person's enrolled speech, worked out once at enrollment and
stored with the voice profile (encrypted, as the reference itself), so that a generation does not
pay it: the adaptation's VoiceModel and the FrameBank of frame selection, whose transcription
(Whisper tiny.en) and phone alignment (pocketsphinx) are most of a voice's first use.
bench/bench_clone.py on the 5 speakers of voices/ (20-30 s enrolled, a 10 s sentence, AMD EPYC 2
cores): the analysis takes 3.4-6.0 s at enrollment; a voice's first use in a process then has a
real-time factor of 0.30-0.42 (median 0.39) instead of 0.60-0.95 (median 0.83).

pack(): bytes (compressed NumPy npz without pickles; the bank's envelopes and aperiodicities as
float16: 6.8 MB for 28 s of speech, read back in 0.08 s) naming the format VERSION and the SHA-256
of the reference they were made from. unpack() gives them back only for this very reference and
VERSION; anything else is ignored, and the voice is then analysed at its use as before
(offline.prime_voice)."""
from __future__ import annotations

import hashlib
import io
import json

import numpy as np

from avatar.synthesis.speech import frame_selection

# Raise it whenever VoiceModel or FrameBank change what they hold or how it is computed: stored
# analyses of an older version are then not used (the voice is analysed again at its next use).
# 2: the enrolled speech's phones aligned in parts where pocketsphinx cannot take its whole transcript
# at once (version 1 banks had no units of the person then).
VERSION = 2
MODEL_FIELDS = ("lf0_mean", "lf0_std", "rms")  # VoiceModel's numbers; its envelope is an array


def _digest(reference: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(reference, np.float32).tobytes()).hexdigest()


def pack(reference: np.ndarray, model, bank: frame_selection.FrameBank) -> bytes:
    """The VoiceModel and FrameBank made from reference, as bytes to store with the voice profile."""
    spans = [(s.phone, s.start, s.end, s.before, s.after) for unit in bank.units.values() for s in unit]
    meta = {"version": VERSION, "reference": _digest(reference), "spans": spans,
            **{k: float(getattr(model, k)) for k in MODEL_FIELDS}}
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), envelope=model.envelope,
                        keys=bank.keys, log_sp=bank.log_sp.astype(np.float16), ap=bank.ap.astype(np.float16),
                        voiced=bank.voiced, speech=bank.speech)
    return buf.getvalue()


def unpack(reference: np.ndarray, data: bytes | None) -> tuple[dict, frame_selection.FrameBank] | None:
    """(the VoiceModel's state, the FrameBank) stored in data; None when data is absent, unreadable,
    of another VERSION or made from another reference."""
    if not data:
        return None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes())
            if meta.get("version") != VERSION or meta.get("reference") != _digest(reference):
                return None
            arrays = {k: z[k] for k in ("envelope", "keys", "log_sp", "ap", "voiced", "speech")}
            model = {k: float(meta[k]) for k in MODEL_FIELDS}
            units: dict[str, list[frame_selection.PhoneSpan]] = {}
            for phone, start, end, before, after in meta["spans"]:
                units.setdefault(phone, []).append(frame_selection.PhoneSpan(phone, int(start), int(end), before, after))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    bank = frame_selection.FrameBank.from_state(arrays["keys"], arrays["log_sp"].astype(np.float32),
                                                arrays["ap"].astype(np.float32), arrays["voiced"],
                                                arrays["speech"], units)
    return {**model, "envelope": arrays["envelope"]}, bank
