"""Offline speech: espeak-ng, or Kokoro-82M in its shipped style nearest the enrolled voice
(speech/kokoro.py), says the text; WORLD (pyworld) moves it toward that voice.

Adaptation, all measured on the enrolled reference: F0 mapped to the speaker's log-F0 mean and
spread; the spectral envelope warped along frequency by the factor that best matches the
speaker's average envelope (formant positions), then equalised toward that envelope (timbre);
loudness matched. Then each phone is drawn toward the person's own enrolled stretch of that phone, and
the rest toward the nearest frames of the enrolled speech (speech/frame_selection.py), when there
are at least 2 s of it. Figures on the shared speakers:
bench/bench_clone.py and bench/bench_synthesis.py."""
from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from avatar.synthesis.grant import require_grant
from avatar.synthesis.speech import OUTPUT_SR, ReferenceCache, Speech, frame_selection, voice_analysis, world

WORK_SR = 16000
FRAME_MS = world.FRAME_MS


class SpeechError(Exception):
    pass


def espeak(text: str, voice: str = "en-us", rate: int = 160) -> np.ndarray:
    """Plain espeak-ng speech at WORK_SR (float32)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SpeechError("espeak-ng is not installed (Debian package espeak-ng)")
    proc = subprocess.run([exe, "-v", voice, "-s", str(rate), "--stdout", "--", text], capture_output=True, timeout=60)
    if proc.returncode != 0 or not proc.stdout:
        raise SpeechError(f"espeak-ng failed: {proc.stderr.decode(errors='replace')[:200]}")
    audio, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    return resample_poly(audio, WORK_SR, sr).astype(np.float32) if sr != WORK_SR else audio


class VoiceModel:
    """What the adaptation needs from a speaker: log-F0 mean and spread, mean log envelope, loudness."""

    def __init__(self, audio: np.ndarray, sr: int = WORK_SR):
        f0, sp, _ = world.analysed(audio, sr)
        voiced = f0 > 0
        if voiced.sum() < 50:
            raise SpeechError("the enrolled voice has too little voiced speech")
        lf0 = np.log(f0[voiced])
        self.lf0_mean, self.lf0_std = float(lf0.mean()), float(lf0.std())
        self.envelope = np.log(sp[voiced] + 1e-12).mean(axis=0)
        self.rms = float(np.sqrt(np.mean(np.asarray(audio, np.float64) ** 2)) + 1e-9)

    @classmethod
    def from_state(cls, lf0_mean: float, lf0_std: float, envelope: np.ndarray, rms: float) -> VoiceModel:
        model = cls.__new__(cls)
        model.lf0_mean, model.lf0_std, model.envelope, model.rms = lf0_mean, lf0_std, envelope, rms
        return model


_VOICES: ReferenceCache[VoiceModel] = ReferenceCache(VoiceModel, keep=32)


def voice_model(reference: np.ndarray) -> VoiceModel:
    """Cached per process by the reference's hash (the reference itself is never stored here)."""
    return _VOICES.get(reference)


def analysed_voice(reference: np.ndarray) -> bytes | None:
    """What this voice needs of an enrolled reference (16 kHz mono), worked out now to be stored with
    the voice profile (speech/voice_analysis.py); None when the reference is too short to convert
    toward (its use then adapts without a bank, as before)."""
    try:
        return voice_analysis.pack(reference, voice_model(reference), frame_selection.frame_bank(reference))
    except (SpeechError, frame_selection.ConversionError):
        return None


def prime_voice(reference: np.ndarray, stored: bytes | None) -> bool:
    """Uses a stored analysis of reference (analysed_voice) in this process instead of analysing it
    again; False, and nothing changed, when stored does not belong to this reference and version."""
    unpacked = voice_analysis.unpack(reference, stored)
    if unpacked is None:
        return False
    state, bank = unpacked
    _VOICES.put(reference, VoiceModel.from_state(**state))
    frame_selection.keep_frame_bank(reference, bank)
    return True


def _warp(log_env: np.ndarray, alpha: float) -> np.ndarray:
    """Envelope(s) stretched along frequency by alpha (>1 moves formants up)."""
    n = log_env.shape[-1]
    src = np.clip(np.arange(n) / alpha, 0, n - 1)
    if log_env.ndim == 1:
        return np.interp(src, np.arange(n), log_env)
    return np.stack([np.interp(src, np.arange(n), row) for row in log_env])


def adapted_world(audio: np.ndarray, target: VoiceModel, sr: int = WORK_SR) -> tuple[np.ndarray, ...] | None:
    """The WORLD parameters (f0, envelope, aperiodicity) of the speech moved toward the target voice:
    its pitch to the person's mean and spread, its envelope warped along frequency and equalised to
    theirs. None when nothing in it is voiced."""
    f0, sp, ap = world.analysed(audio, sr)
    voiced = f0 > 0
    if not voiced.any():
        return None
    lf0 = np.log(f0[voiced])
    mu, sd = lf0.mean(), lf0.std() + 1e-6
    scale = float(np.clip(target.lf0_std / sd, 0.5, 2.0))
    f0_new = f0.copy()
    f0_new[voiced] = np.exp((lf0 - mu) * scale + target.lf0_mean)
    log_sp = np.log(sp + 1e-12)
    src_env = log_sp[voiced].mean(axis=0)
    n = src_env.size
    band = slice(int(n * 200 / (sr / 2)), int(n * 5000 / (sr / 2)))
    alphas = np.linspace(0.75, 1.35, 25)
    scores = [np.corrcoef(_warp(src_env, a)[band], target.envelope[band])[0, 1] for a in alphas]
    alpha = float(alphas[int(np.argmax(scores))])
    warped = _warp(log_sp, alpha)
    eq = target.envelope - warped[voiced].mean(axis=0)
    eq = np.convolve(eq, np.ones(9) / 9, mode="same")
    eq = np.clip(eq, -np.log(10 ** (12 / 20)) * 2, np.log(10 ** (12 / 20)) * 2)  # at most ±12 dB (power)
    return f0_new, np.exp(warped + eq[None, :]), ap


def at_level(y: np.ndarray, rms: float) -> np.ndarray:
    """y scaled to the person's loudness (RMS), its peaks kept under full scale; float32."""
    y = np.asarray(y, np.float64) * rms / (np.sqrt(np.mean(np.square(y, dtype=np.float64))) + 1e-9)
    peak = np.max(np.abs(y)) if y.size else 0.0
    return (y / peak * 0.95 if peak > 0.95 else y).astype(np.float32)


def adapt(audio: np.ndarray, target: VoiceModel, sr: int = WORK_SR) -> np.ndarray:
    """The speech moved toward the target voice (adapted_world), resynthesised at its loudness."""
    import pyworld as pw

    moved = adapted_world(audio, target, sr)
    if moved is None:  # nothing voiced to move (a short unvoiced word): only the level is the person's
        return at_level(audio, target.rms)
    f0, sp, ap = moved
    return at_level(pw.synthesize(f0, np.ascontiguousarray(sp), ap, sr, frame_period=FRAME_MS), target.rms)


_PROBES: list[tuple[np.ndarray, np.ndarray]] = []  # (style, its voice's template), once per process
_PROBES_LOCK = threading.Lock()
# Each Kokoro style's voice template, as style_templates() makes them (bench/kokoro_style_templates.py
# writes the file; hearing the 5 styles takes about 27 s on 2 cores, once per process without it)
STYLE_TEMPLATES_FILE = Path(__file__).with_name("kokoro_style_templates.npz")


def style_key(styles: dict[str, np.ndarray]) -> str:
    """SHA-256 of the probe sentence and every style (name and vectors): stored templates are used
    only for exactly these."""
    from avatar.synthesis.speech import kokoro

    digest = hashlib.sha256(kokoro.STYLE_PROBE.encode())
    for name in sorted(styles):
        digest.update(name.encode() + b"\0" + np.ascontiguousarray(styles[name], np.float32).tobytes())
    return digest.hexdigest()


def style_templates(styles: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per style: the Resemblyzer template of its voice saying kokoro.STYLE_PROBE."""
    from avatar.analysis.voice import speaker_template
    from avatar.synthesis.speech import kokoro

    out = {}
    for name, style in styles.items():
        probe = resample_poly(kokoro.synthesize(kokoro.STYLE_PROBE, style), WORK_SR, kokoro.SR)
        out[name] = speaker_template(probe.astype(np.float32))
    return out


def stored_style_templates(styles: dict[str, np.ndarray], path: Path = STYLE_TEMPLATES_FILE) -> dict | None:
    """The templates of STYLE_TEMPLATES_FILE when they were made for exactly these styles, else None."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != style_key(styles) or set(stored.files) != {"key", *styles}:
                return None
            return {name: np.asarray(stored[name], np.float32) for name in styles}
    except (OSError, ValueError, KeyError):
        return None


def nearest_style(reference: np.ndarray) -> np.ndarray:
    """Of the Kokoro styles, the one whose voice (saying kokoro.STYLE_PROBE: the stored templates,
    or heard once per process) Resemblyzer finds nearest the enrolled reference."""
    from avatar.analysis.voice import speaker_similarity, speaker_template
    from avatar.synthesis.speech import kokoro

    with _PROBES_LOCK:
        if not _PROBES:
            styles = kokoro.get_model().styles
            templates = stored_style_templates(styles) or style_templates(styles)
            _PROBES.extend((styles[name], templates[name]) for name in styles)
        probes = list(_PROBES)
    target = speaker_template(reference)
    return max(probes, key=lambda p: speaker_similarity(p[1], target))[0]


def kokoro_source(text: str, reference: np.ndarray) -> np.ndarray:
    """Kokoro speech of text at WORK_SR in the style nearest the reference voice."""
    from avatar.synthesis.speech import kokoro

    try:
        audio = kokoro.synthesize(text, nearest_style(reference))
    except kokoro.KokoroError as exc:
        raise SpeechError(str(exc)) from exc
    return resample_poly(audio, WORK_SR, kokoro.SR).astype(np.float32)


SOURCES = {"espeak": lambda text, reference: espeak(text), "kokoro": kokoro_source}


def cloned_speech(text: str, reference: np.ndarray, source: str = "espeak") -> np.ndarray:
    """The text said in the reference voice at WORK_SR, as the offline backend delivers it (before
    its label and marks): the source's speech moved toward the voice, drawn toward the person's own
    frames when the reference holds enough speech for a bank of them, its lost words repaired."""
    target = voice_model(reference)
    said = SOURCES[source](text, reference)
    moved = adapted_world(said, target)  # (a female espeak base measured worse)
    if moved is not None:
        try:
            bank = frame_selection.frame_bank(reference)
        except frame_selection.ConversionError:
            pass  # too little enrolled speech for a bank of frames: the adapted voice alone
        else:
            # converted from the adapted voice's WORLD parameters, not from its resynthesis
            conversion = frame_selection.Conversion(*moved, bank, frame_selection.source_phones(said, text))
            return at_level(frame_selection.keep_words(conversion, text), target.rms)
    return adapt(said, target)


class OfflineSpeech:
    """espeak-ng (source "espeak", the default: plainer, fastest) or Kokoro-82M (source "kokoro":
    natural prosody, slower) says the text; adapt() moves it toward the enrolled voice."""

    def __init__(self, source: str = "espeak"):
        if source not in SOURCES:
            raise ValueError(f"unknown speech source {source!r}; known: {', '.join(SOURCES)}")
        self.source = source
        self.name = f"offline-{source}-world"

    def synthesize(self, grant, text: str) -> Speech:
        grant = require_grant(grant)
        likeness = grant.likeness()
        prime_voice(likeness.voice, likeness.voice_analysis)
        y = cloned_speech(text, likeness.voice, self.source)
        grant.ensure_valid()
        out = resample_poly(y, OUTPUT_SR, WORK_SR).astype(np.float32)
        return Speech(out, OUTPUT_SR, text, self.name)
