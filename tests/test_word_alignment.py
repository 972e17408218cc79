"""Forced alignment of a known text, against the word timings of GRID's .align files (real speech in
shared/data/talking), on audio longer than one Whisper window."""
import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from avatar.analysis import word_alignment as wa

CLIPS = 12  # about 36 s of speech: more than one window of Whisper's


@pytest.fixture(scope="module")
def grid_run(shared_data):
    """12 GRID clips back to back (16 kHz) and the true (word, start, end) of each of their words."""
    pieces, truth, offset = [], [], 0.0
    for align in sorted((shared_data / "talking").glob("grid_s1_*.align"))[:CLIPS]:
        audio, sr = sf.read(align.with_suffix(".wav"), dtype="float32")
        audio = resample_poly(audio, 16000, sr).astype(np.float32)
        truth += [(w, offset + int(a) / 25000, offset + int(b) / 25000)
                  for a, b, w in (line.split() for line in align.read_text().splitlines()) if w not in {"sil", "sp"}]
        pieces.append(audio)
        offset += len(audio) / 16000
    return np.concatenate(pieces), truth


def _start_errors(got, truth):
    assert [w for w, _, _ in got] == [w for w, _, _ in truth]
    return np.array([abs(g[1] - t[1]) for g, t in zip(got, truth)])


def test_words_land_where_they_are_said(grid_run):
    audio, truth = grid_run
    text = " ".join(w for w, _, _ in truth)
    assert len(audio) / 16000 > wa.WINDOW_SECONDS
    got = wa.sphinx_words(audio, text)
    err = _start_errors(got, truth)
    assert np.median(err) <= 0.05 and np.percentile(err, 90) <= 0.12
    assert wa.aligned_words(audio, text) == got


def test_an_alignment_does_not_depend_on_the_audio_aligned_before(grid_run, shared_data):
    """The decoder is shared by the process: after another clip (this one moved two words by 10 ms
    through the front end's noise estimate), the same audio is aligned the same."""
    audio, truth = grid_run
    text = " ".join(w for w, _, _ in truth)
    first = wa.sphinx_words(audio, text)
    other = shared_data / "talking" / "grid_s1_srah5s"
    clip, sr = sf.read(other.with_suffix(".wav"), dtype="float32")
    said = " ".join(w for _, _, w in (line.split() for line in other.with_suffix(".align").read_text().splitlines())
                    if w not in {"sil", "sp"})
    assert wa.sphinx_words(resample_poly(clip, 16000, sr).astype(np.float32), said)
    assert wa.sphinx_words(audio, text) == first


def test_whisper_aligns_window_by_window_where_pocketsphinx_cannot(grid_run):
    audio, truth = grid_run
    err = _start_errors(wa.whisper_words(audio, " ".join(w for w, _, _ in truth)), truth)
    assert np.median(err) <= 0.08 and np.percentile(err, 90) <= 0.25  # coarser than pocketsphinx's (docstring)


def test_window_cuts_compare_words_as_tokens():
    """Whisper writes GRID's "m four" as "M4": compared as tokens, the sentence's words agree in a run
    and anchor the cut, where a lone "please" matched another sentence's (a whole sentence then fell
    into the next window, 3 s off)."""
    assert wa.match_tokens("M4") == ["m", "four"] and wa.match_tokens("G0,") == ["g", "zero"]
    assert wa.match_tokens("Please.") == ["please"] and wa.match_tokens("42") == ["four", "two"]


def test_words_missing_from_the_dictionary_are_spelled_from_espeak():
    decoder = wa._sphinx()
    assert decoder.lookup_word("blorptang") is None and decoder.lookup_word("42") is None
    # unknown words said twice (a code's digits are) are added once
    keys = wa._sphinx_words(decoder, wa.text_words("Siobhan met Blorptang's 42 avatars: Blorptang 42 times."))
    assert keys == ["siobhan", "met", "blorptang's", "42", "avatars", "blorptang", "42", "times"]
    assert all(decoder.lookup_word(k) for k in keys)
    assert wa.arpabet(["b", "I", "n"]) == "B IH N" and wa.arpabet(["aI@", "?", "#"]) == "AY ER T"


def test_nothing_to_align():
    assert wa.aligned_words(np.zeros(16000, np.float32), " ,. ") == []
    assert wa.aligned_words(np.zeros(0, np.float32), "hello") == []
    for n in (0, 50):  # what is left after the last word pocketsphinx placed may be this short
        assert wa.whisper_words(np.full(n, 0.01, np.float32), "hello there") == []


def test_a_talking_heads_phones_follow_the_text_not_what_whisper_hears(shared_data):
    from avatar.analysis.phones import BILABIAL
    from avatar.synthesis.video.visemes import speech_phones

    base = shared_data / "talking" / "grid_s1_bbaf2n"  # "bin blue at f two now"; Whisper hears "Bimblue F2 now"
    audio, sr = sf.read(base.with_suffix(".wav"), dtype="float32")
    starts = {w: int(a) / 25000 for a, b, w in (line.split() for line in base.with_suffix(".align").read_text().splitlines())}
    bilabials = [p for p in speech_phones(audio, sr, "Bin blue at F two now.") if p.phone in BILABIAL]
    assert [p.phone for p in bilabials] == ["b", "b"]
    assert abs(bilabials[0].start - starts["bin"]) <= 0.05 and abs(bilabials[1].start - starts["blue"]) <= 0.05


def test_words_pocketsphinx_gave_up_on_are_placed_by_whisper_after_the_last_it_placed(grid_run, monkeypatch):
    audio, truth = grid_run
    text = " ".join(w for w, _, _ in truth)
    first = wa.sphinx_words(audio, text)[:40]  # as if its search had ended there (it does on some synthetic speech)
    monkeypatch.setattr(wa, "sphinx_words", lambda audio, text: first)
    got = wa.aligned_words(audio, text)
    assert got[:40] == first and got[40][1] >= first[-1][2]
    err = _start_errors(got, truth)
    assert np.median(err[40:]) <= 0.08


def test_phones_lie_inside_their_words_and_spell_them(grid_run):
    """The phone-level pass: the phones of each word, in the dictionary's spelling, start where the
    word does and end where it ends (both passes share the words' frames)."""
    audio, truth = grid_run
    text = " ".join(w for w, _, _ in truth[:18])  # the first three sentences
    audio = audio[: int((truth[17][2] + 0.3) * 16000)]
    phones = wa.sphinx_phones(audio, text)
    spoken = [p for p in phones if p[0] != "SIL"]
    assert [p for p, _, _ in spoken[:6]] == ["B", "IH", "N", "B", "L", "UW"]  # "bin blue"
    assert all(start < end for _, start, end in phones) and all(
        a[2] <= b[1] + 1e-6 for a, b in zip(phones, phones[1:]))
    words = wa.sphinx_words(audio, text)
    starts = {round(s, 2) for _, s, _ in spoken}
    assert sum(round(s, 2) in starts for _, s, _ in words) >= len(words) - 1  # each word opens with a phone
    assert abs(spoken[-1][2] - words[-1][2]) <= 0.02
    assert wa.sphinx_phones(audio[:800], text) == []  # under MIN_SECONDS


def test_a_text_the_phone_pass_cannot_take_whole_is_aligned_in_parts():
    """espeak-ng's "The weather report says…", slowed as frame_selection aligns it: pocketsphinx's word
    pass places all 25 words but its phone pass fails on the whole text, so the offline voice had no
    phones, and no units of the person, for the whole sentence. In halves (down to single words) the
    phones come back, in order, each inside the word the word pass placed it in, spelled as the
    dictionary spells the words."""
    import pyworld as pw

    from avatar.synthesis.speech import offline, world

    text = ("The weather report says it will rain over the hills tonight, so bring a warm coat and an umbrella "
            "when you come to visit us.")
    said = offline.espeak(text)
    f0, sp, ap = world.analyse(said, 16000)
    slow = pw.synthesize(f0, sp, ap, 16000, frame_period=world.FRAME_MS * 1.5).astype(np.float32)
    assert wa.sphinx_phones(slow, text) == []
    words = wa.sphinx_words(slow, text)
    assert len(words) == 25
    phones = wa.sphinx_phones_in_parts(slow, text)
    spoken = [p for p in phones if p[0] != "SIL"]
    assert len(spoken) >= 70  # the text has 81 in the dictionary's spelling
    assert [p for p, _, _ in spoken[:6]] == ["DH", "AH", "W", "EH", "DH", "ER"]  # "the weather"
    assert [p for p, _, _ in spoken[-2:]] == ["AH", "S"]  # "us"
    assert all(start < end for _, start, end in phones) and all(
        a[2] <= b[1] + 1e-6 for a, b in zip(phones, phones[1:]))
    assert all(any(ws - 0.05 <= s and e <= we + 0.05 for _, ws, we in words) for _, s, e in spoken)
    # a text that aligns whole is aligned as sphinx_phones aligns it
    other = "My brother bought a bicycle at the market on Monday, and he rode it all the way home."
    said = offline.espeak(other)
    whole = wa.sphinx_phones(said, other)
    assert whole and wa.sphinx_phones_in_parts(said, other) == whole
