"""A tiny random-weight XTTS-v2, built and saved the way the real model folder looks
(config.json, model.pth, vocab.json), so the real loading path can be exercised offline."""
from __future__ import annotations

import json
from pathlib import Path


def _vocab(path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))  # noqa: S106 - a tokenizer symbol, not a password
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = ["[STOP]", "[UNK]", "[SPACE]", "[START]", "[en]"]
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=specials,
                                  initial_alphabet=list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-"))
    text = ["hello this is a short test of the tiny model", "the quick brown fox jumps over the lazy dog"] * 20
    tok.train_from_iterator(text, trainer)
    tok.save(str(path))


def build(folder: Path) -> Path:
    import torch
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    folder.mkdir(parents=True, exist_ok=True)
    _vocab(folder / "vocab.json")
    config = XttsConfig()
    a = config.model_args
    a.gpt_layers, a.gpt_n_model_channels, a.gpt_n_heads = 1, 64, 2
    a.gpt_max_audio_tokens, a.gpt_max_text_tokens, a.gpt_max_prompt_tokens = 40, 80, 70
    a.decoder_input_dim = 64
    a.tokenizer_file = str(folder / "vocab.json")
    torch.manual_seed(0)
    model = Xtts(config)
    model.tokenizer = VoiceBpeTokenizer(vocab_file=str(folder / "vocab.json"))  # before init_models()
    model.init_models()
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    config.save_json(str(folder / "config.json"))
    json.loads((folder / "config.json").read_text())  # written and readable
    return folder
