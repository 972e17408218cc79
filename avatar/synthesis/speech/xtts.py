"""XTTS-v2 through Coqui TTS (`coqui-tts`, imported as `TTS`).

The model folder (default models/xtts_v2/) holds config.json, model.pth and vocab.json; it is
loaded once per process through `Xtts.load_checkpoint`. Conditioning latents are computed from the
grant's enrolled voice (arrays, no files) and may be cached by the caller, encrypted (see
avatar.jobs.generation). Real weights cannot be downloaded here: the tests build a tiny
random-weight XTTS and load it through this same code."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from avatar.synthesis.grant import require_grant
from avatar.synthesis.speech import OUTPUT_SR, Speech

NAME = "xtts-v2"
REQUIRED = ("config.json", "model.pth", "vocab.json")
_MODELS: dict[str, object] = {}
_LOCK = threading.Lock()


class XttsUnavailable(Exception):
    pass


def available(model_dir: Path) -> bool:
    return all((Path(model_dir) / f).is_file() for f in REQUIRED)


def load_model(model_dir: Path):
    """The loaded model for model_dir, once per process."""
    model_dir = Path(model_dir)
    key = str(model_dir.resolve())
    with _LOCK:
        if key not in _MODELS:
            if not available(model_dir):
                raise XttsUnavailable(f"XTTS-v2 needs {', '.join(REQUIRED)} in {model_dir}")
            from TTS.tts.configs.xtts_config import XttsConfig
            from TTS.tts.models.xtts import Xtts

            config = XttsConfig()
            config.load_json(str(model_dir / "config.json"))
            model = Xtts(config)
            model.load_checkpoint(config, checkpoint_dir=str(model_dir), eval=True)
            _MODELS[key] = model
        return _MODELS[key]


def conditioning(model, voice_16k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gpt_cond_latent, speaker_embedding) as arrays, from the enrolled voice (16 kHz float32)."""
    import torch

    with torch.inference_mode():
        wav22 = torch.from_numpy(resample_poly(voice_16k, 22050, 16000).astype(np.float32))[None, : 22050 * 30]
        latent = model.get_gpt_cond_latents(wav22, 22050, length=6, chunk_length=6)
        speaker = model.get_speaker_embedding(wav22, 22050)
    return latent.cpu().numpy(), speaker.cpu().numpy()


class XttsSpeech:
    name = NAME

    def __init__(self, model_dir: Path, latents_cache=None):
        """latents_cache: optional object with get(voice) -> (latent, speaker) | None and
        put(voice, latent, speaker), for the grant's enrolled voice."""
        self.model_dir = Path(model_dir)
        self.cache = latents_cache

    def synthesize(self, grant, text: str, language: str = "en") -> Speech:
        import torch

        grant = require_grant(grant)
        model = load_model(self.model_dir)
        voice = grant.likeness().voice  # decoded once: the cache keys on it too
        cached = self.cache.get(voice) if self.cache is not None else None
        if cached is None:
            latent, speaker = conditioning(model, voice)
            if self.cache is not None:
                self.cache.put(voice, latent, speaker)
        else:
            latent, speaker = cached
        with torch.inference_mode():
            out = model.inference(text, language, torch.from_numpy(latent), torch.from_numpy(speaker),
                                  enable_text_splitting=True)
        grant.ensure_valid()
        wav = np.asarray(out["wav"], np.float32).reshape(-1)
        sr = model.config.audio.output_sample_rate
        if sr != OUTPUT_SR:
            wav = resample_poly(wav, OUTPUT_SR, sr).astype(np.float32)
        peak = float(np.max(np.abs(wav))) if wav.size else 0.0
        if peak > 0.99:
            wav = wav / peak * 0.95
        return Speech(wav, OUTPUT_SR, text, NAME)
