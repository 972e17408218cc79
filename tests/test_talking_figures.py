"""Phones of timed words, and the figures that compare a talking head with real talking, on the
real GRID clips of shared/data/talking (word timings from their .align files)."""
import numpy as np
import pytest
import soundfile as sf

from avatar.analysis import talking_figures as tf
from avatar.analysis.liveness import track
from avatar.analysis.media import decode_clip
from avatar.analysis.phones import BILABIAL, phone_times, word_phones


def test_word_phones_spell_bilabials_and_numbers():
    spelled = word_phones(["maybe", "proper", "2", "F", "now."])
    assert [p for p in spelled[0] if p in BILABIAL] == ["m", "b"]
    assert [p for p in spelled[1] if p in BILABIAL] == ["p", "p"]
    assert spelled[2] == ["t", "u:"] and spelled[3] == ["E", "f"] and spelled[4] == ["n", "aU"]


def test_phones_fill_their_word_in_order():
    phones = phone_times([("bin", 1.0, 1.3), ("blue", 1.3, 1.6), ("", 1.6, 1.7), ("now", 1.7, 1.7)])
    assert [p.phone for p in phones] == ["b", "I", "n", "b", "l", "u:"]  # empty and zero-length words: nothing
    assert phones[0].start == 1.0 and phones[2].end == pytest.approx(1.3) and phones[-1].end == pytest.approx(1.6)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(phones, phones[1:]))
    assert phones[1].end - phones[1].start == pytest.approx(2 * (phones[0].end - phones[0].start))  # a vowel: twice


def _grid(shared_data, stem):
    base = shared_data / "talking" / stem
    frames, _, _ = decode_clip((base.with_suffix(".mp4")).read_bytes(), 25, 512)
    audio, sr = sf.read(base.with_suffix(".wav"), dtype="float32")
    words = [(w, int(a) / 25000, int(b) / 25000) for a, b, w in
             (line.split() for line in base.with_suffix(".align").read_text().splitlines()) if w != "sil"]
    return frames, track(frames), audio, sr, phone_times(words)


@pytest.mark.slow
def test_real_talking_closes_its_lips_on_bilabials_and_shows_the_inside_of_its_mouth(shared_data):
    frames, sig, audio, sr, phones = _grid(shared_data, "grid_s1_bbaf2n")  # "bin blue at f two now"
    closure = tf.bilabial_closure(sig, phones)
    assert closure["bilabials"] == 2 and closure["ratio"] == 1.0
    assert tf.inner_mouth_spread(frames, sig) > 12
    assert tf.head_motion(sig) > 0.003
    assert -0.2 < tf.lip_loudness_correlation(sig, audio, sr) < 0.9


@pytest.mark.slow
def test_a_mouth_held_open_misses_the_bilabials_and_a_still_picture_has_no_head_motion(shared_data):
    frames, sig, audio, sr, phones = _grid(shared_data, "grid_s1_bbaf2n")
    opened = [i for i, o in enumerate(sig.observations) if o is not None and o.mouth_open > tf.OPEN_MOUTH]
    assert opened
    held = track(type(frames)(images=[frames.images[opened[0]]] * len(frames.images),
                              times=frames.times, fps=frames.fps))
    assert tf.bilabial_closure(held, phones)["ratio"] == 0.0
    assert tf.head_motion(held) < 0.002
    assert abs(tf.lip_loudness_correlation(held, audio, sr)) < 0.15  # only the tracker's jitter: follows nothing
    assert np.isfinite(tf.inner_mouth_spread(frames, held))


def test_the_mouth_follows_the_phones_and_shuts_on_every_bilabial():
    from avatar.synthesis.video.visemes import shape_mouth

    fps = 25
    phones = phone_times([("maybe", 0.2, 0.6), ("papa", 0.6, 1.0), ("ah", 1.0, 1.4)])
    loud = np.ones(40, np.float32)  # loudness alone would hold the mouth open throughout
    mouth = shape_mouth(loud, phones, fps)
    for p in (p for p in phones if p.phone in BILABIAL):
        assert mouth[int((p.start + p.end) / 2 * fps)] == 0.0, p
    assert mouth[:4].max() == 0.0 and mouth[-3:].max() == 0.0  # silence before and after: shut
    assert mouth[int(1.2 * fps)] > 0.6  # the open vowel of "ah"
    softer = loud.copy()
    softer[25:35] = 0.2  # the "ah" said more softly than the rest
    assert shape_mouth(softer, phones, fps)[int(1.2 * fps)] < mouth[int(1.2 * fps)]  # loudness still modulates
