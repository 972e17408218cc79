"""The example-based talking head (avatar.synthesis.video.example_based) on real footage: GRID
speaker s1 reading one sentence is the footage; his own recording of another sentence is the speech
it must say. Its figures are measured as on real talking (analysis.talking_figures), with the
bilabials of the spoken sentence taken from the corpus's own word timings."""
import numpy as np
import pytest
import soundfile as sf

from avatar.analysis import talking_figures as tf
from avatar.analysis.face import face_embedding
from avatar.analysis.liveness import track
from avatar.analysis.media import Frames
from avatar.analysis.phones import phone_times
from avatar.synthesis.speech import Speech
from avatar.synthesis.video import example_based as eb

FOOTAGE = "talking/grid_s1_lrbe9a"  # "lay red by e nine again"
SPOKEN = "talking/grid_s1_pbbjzp"  # "place blue by j zero please": five bilabials


@pytest.fixture(scope="module")
def model(shared_data):
    return eb.footage_model((shared_data / f"{FOOTAGE}.mp4").read_bytes(), 512)


@pytest.fixture(scope="module")
def spoken(shared_data):
    audio, sr = sf.read(shared_data / f"{SPOKEN}.wav", dtype="float32")
    words = [(w, int(a) / 25000, int(b) / 25000) for a, b, w in
             (line.split() for line in (shared_data / f"{SPOKEN}.align").read_text().splitlines()) if w != "sil"]
    return Speech(audio=audio, sr=sr), phone_times(words)


@pytest.fixture(scope="module")
def rendered(model, spoken):
    speech, _ = spoken
    images = list(eb.render(model, speech, seed=3))
    frames = Frames(images=images, times=np.arange(len(images)) / eb.FPS, fps=eb.FPS)
    return frames, track(frames)


@pytest.mark.slow
def test_the_head_says_another_sentence_as_the_person(model, spoken, rendered):
    speech, phones = spoken
    frames, sig = rendered
    assert len(frames) == eb.frame_count(speech.seconds) and sig.present.all()
    crops = [model.image(i) for i in range(len(model.frames))]
    real = Frames(images=crops, times=np.arange(len(crops)) / eb.FPS, fps=eb.FPS)
    real_sig = track(real)
    k = int(np.argmax([o.sharpness if o is not None else -1 for o in real_sig.observations]))
    reference = face_embedding(real.images[k], real_sig.observations[k])
    assert tf.identity_distance(frames, sig, reference) <= 0.4
    closure = tf.bilabial_closure(sig, phones)
    assert closure["bilabials"] >= 4 and closure["ratio"] >= 0.8, closure
    # the inside of the mouth is the person's own (no flat fill): as varied as in the footage
    assert tf.inner_mouth_spread(frames, sig) >= 0.65 * tf.inner_mouth_spread(real, real_sig)
    assert tf.head_motion(sig) >= 0.5 * tf.head_motion(real_sig)  # the footage's own motion, replayed
    assert 0.15 <= tf.lip_loudness_correlation(sig, speech.audio, speech.sr) <= 0.7


@pytest.mark.slow
def test_nothing_is_drawn_above_the_mouth(model, rendered):
    """Every output frame's upper face is a footage frame, pixel for pixel: only the lower face is
    replaced, and only by the person's own frames."""
    frames, _ = rendered
    tops = np.stack([model.image(i)[: model.size // 3] for i in range(len(model.frames))])
    for img in frames.images:
        assert np.abs(tops.astype(np.int16) - img[: model.size // 3]).reshape(len(tops), -1).max(1).min() == 0


def test_mouths_are_chosen_for_the_phones(model):
    """Lips shut on bilabials, open on open vowels; runs of the footage's own order, no flicker."""
    n = 60
    visemes = (["silence"] * 5 + ["bilabial"] * 3 + ["open"] * 6 + ["consonant"] * 3) * 3 + ["silence"] * 9
    opening = np.array([{"bilabial": 0.0, "open": 0.9, "consonant": 0.3}.get(v, 0.05) for v in visemes], np.float32)
    base = eb.base_sequence(n, (0, len(model.frames)), np.random.default_rng(0))
    path = eb.choose_mouths(model, opening, np.zeros(n, np.float32), visemes, base)
    shut = np.percentile(model.opening, 10) + 0.02
    assert all(model.opening[path[i]] <= shut for i in range(n) if visemes[i] == "bilabial")
    wide = [model.opening[path[i]] for i in range(n) if visemes[i] == "open"]
    assert np.median(wide) > 0.5
    steps = np.diff(path)
    assert np.mean(steps == 1) > 0.4  # mostly the footage's own next frame
    flicker = sum(1 for a, b, c in zip(path, path[1:], path[2:]) if a == c != b)
    assert flicker <= 2


def test_base_frames_play_forward_and_back():
    seq = eb.base_sequence(25, (5, 15), np.random.default_rng(1))
    assert seq.min() >= 5 and seq.max() <= 14
    assert set(np.abs(np.diff(seq))) <= {1}


def test_footage_without_enough_face_is_refused(model):
    wall = np.full((256, 256, 3), 128, np.uint8)  # nobody there
    with pytest.raises(eb.FootageError, match="tracked in 0 frames"):
        eb.build([wall] * 30, None, eb.FPS, 256, phones=[])
    with pytest.raises(eb.FootageError, match="tracked in 10 frames"):  # under a second of a face
        eb.build([model.image(i) for i in range(10)] + [wall] * 30, None, eb.FPS, 256, phones=[])


def test_visemes_of_phones():
    assert [eb.viseme(p) for p in ("m", "f", "u:", "A:", "I", "t", None)] == [
        "bilabial", "labiodental", "rounded", "open", "vowel", "consonant", "silence"]
