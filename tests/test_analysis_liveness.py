"""Passive liveness: every real clip passes, every still attack fails with a reason."""
import cv2
import numpy as np
import pytest

from avatar.analysis.challenge import match_actions
from avatar.analysis.checks import passive_check_bytes
from avatar.analysis.face import observe_image
from avatar.analysis.liveness import (
    PLANAR_RESIDUAL_MIN,
    SAMPLE_FPS,
    SCREEN_PATTERN_MAX,
    Event,
    av_sync,
    detect_events,
    identity_consistency,
    planar_residual,
    spectral_peak,
    track,
)
from avatar.analysis.media import decode_clip
from avatar.demo.media import (
    cut,
    encode_frames,
    frames_of,
    moved_still,
    native_frames,
    read_rgb,
    screen_replay,
    still_to_video,
    tmpdir,
    webcam_framing,
)

REAL = ["d0", "d3", "d9", "d10", "d11", "d12", "d14", "d18", "d19"]
STILLS = ["s1", "s7", "s9", "s11", "s22", "s25", "s42", "d19"]


@pytest.fixture(scope="module")
def work():
    return tmpdir()


@pytest.mark.slow
@pytest.mark.parametrize("clip", REAL)
def test_real_clips_are_live(shared_data, clip):
    r = passive_check_bytes((shared_data / "video" / f"{clip}.mp4").read_bytes())
    assert r.live, r.as_dict()
    assert r.score > 0.5


# a real person sitting still and talking (GRID), and real webcam footage (d19), each in one webcam
# framing (640x480 or 1280x720, the face 20 or 40 % of the height), the thinnest (1280x720 at 20 %:
# a 58 px face once decoded) twice. The suite checks these; the sweep of every real clip of talking/
# and video/ in every framing, and of their photos, is `bench/bench_accuracy.py flat` (README).
FRAMED = ["talking/grid_gridU2_lbax4n", "talking/grid_gridU5_lwbsza", "talking/grid_s1_bbaf2n", "video/d19"]
SMALL, LARGE, LARGE_CLOSE = ((640, 480), 0.2), ((1280, 720), 0.2), ((1280, 720), 0.4)
FRAMED_IN = [(FRAMED[0], *LARGE), (FRAMED[1], *LARGE_CLOSE), (FRAMED[2], *LARGE), (FRAMED[3], *SMALL)]
PHOTOS_IN = [(FRAMED[1], *SMALL, "print"), (FRAMED[1], *LARGE, "shake"), (FRAMED[2], *LARGE, "print"),
             (FRAMED[2], *SMALL, "shake")]


def _framed_clip(shared_data, work, stem, size, face_height, photo_motion=None):
    """The clip placed in a webcam framing (H.264 at CRF 28, sensor noise), or with photo_motion
    a photo of its first frame held up to that webcam."""
    frames = native_frames(shared_data / f"{stem}.mp4")
    box = observe_image(frames[0]).box
    if photo_motion:
        photo = webcam_framing(frames[:1], box, size, face_height, noise=0)[0]
        framed = moved_still(photo, seconds=3, motion=photo_motion)
    else:
        framed = webcam_framing(frames, box, size, face_height)
    out = work / f"{stem.replace('/', '-')}-{size[0]}-{face_height}-{photo_motion}.mp4"
    clip = encode_frames(framed, out, 25, crf=28)
    frames, _, _ = decode_clip(clip.read_bytes(), fps=SAMPLE_FPS, max_side=640)  # as the enrollment job decodes
    return frames


@pytest.mark.slow
@pytest.mark.parametrize("stem,size,face_height", FRAMED_IN)
def test_real_faces_in_webcam_framings_are_found_and_not_flat(shared_data, work, stem, size, face_height):
    frames = _framed_clip(shared_data, work, stem, size, face_height)
    sig = track(frames)
    assert sig.present_ratio >= 0.95
    # the margin is thin only where the face is 58 px once decoded (bench/bench_accuracy.py flat)
    margin = 1.0 if (size, face_height) == LARGE else 1.2
    assert planar_residual(frames, sig) >= PLANAR_RESIDUAL_MIN * margin


@pytest.mark.slow
@pytest.mark.parametrize("stem,size,face_height,motion", PHOTOS_IN)
def test_their_photos_held_up_to_the_webcam_are_flat(shared_data, work, stem, size, face_height, motion):
    frames = _framed_clip(shared_data, work, stem, size, face_height, photo_motion=motion)
    sig = track(frames)
    assert sig.present_ratio >= 0.8
    margin = 1.0 if (size, face_height) == LARGE else 1.2
    assert planar_residual(frames, sig) < PLANAR_RESIDUAL_MIN / margin


@pytest.mark.parametrize("still", STILLS)
def test_still_images_are_refused(shared_data, still):
    r = passive_check_bytes((shared_data / "stills" / f"{still}.jpg").read_bytes())
    assert not r.live and "still image" in r.reasons[0]


# every still moved one way, each way twice (every still in every way: bench_accuracy.py flat)
@pytest.mark.slow
@pytest.mark.parametrize("still,motion", list(zip(STILLS, ["pan", "zoom", "shake", "print"] * 2)))
def test_stills_made_into_videos_are_refused(shared_data, work, still, motion):
    clip = still_to_video(read_rgb(shared_data / "stills" / f"{still}.jpg"), work / f"{still}-{motion}.mp4",
                          seconds=4, motion=motion)
    r = passive_check_bytes(clip.read_bytes())
    assert not r.live and r.reasons, r.as_dict()


@pytest.mark.parametrize("still,cue", [("s25", "human face"), ("s22", "human face"), ("s11", "flat picture")])
def test_attack_reasons_name_the_cue(shared_data, work, still, cue):
    clip = still_to_video(read_rgb(shared_data / "stills" / f"{still}.jpg"), work / f"{still}-r.mp4", seconds=4)
    r = passive_check_bytes(clip.read_bytes())
    assert any(cue in reason for reason in r.reasons), r.reasons


def test_face_photos_have_no_screen_pattern_until_a_grating_is_laid_over_them(shared_data):
    photos = sorted((shared_data / "faces").glob("img*.jpg")) + sorted((shared_data / "stills").glob("*.jpg"))
    yy, xx = np.mgrid[0:640, 0:640]
    grating = 1 + 0.06 * np.sin(2 * np.pi * (0.27 * xx - 0.11 * yy))
    checked = 0
    for path in photos:
        img = read_rgb(path)
        obs = observe_image(img)
        if obs is None:
            continue
        x0, y0, x1, y1 = obs.box
        face = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[max(0, y0):y1, max(0, x0):x1].astype(np.float32)
        assert spectral_peak(face) < SCREEN_PATTERN_MAX, path.name
        assert spectral_peak(face * grating[: face.shape[0], : face.shape[1]]) > SCREEN_PATTERN_MAX, path.name
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize("moire,grids", [(0.08, ((0.31, 0.07), (0.29, -0.05))), (0.05, ((0.38, -0.34), (0.34, -0.28)))])
def test_a_real_clip_replayed_on_a_screen_is_refused_for_its_moire(shared_data, work, moire, grids):
    frames = frames_of(shared_data / "video/d12.mp4", fps=25)[:100]
    clip = encode_frames(screen_replay(frames, seed=1, moire=moire, grids=grids), work / f"screen-{moire}.mp4", fps=25)
    r = passive_check_bytes(clip.read_bytes())
    assert not r.live and any("moiré" in reason for reason in r.reasons), r.as_dict()
    assert r.details["screen_pattern"] > SCREEN_PATTERN_MAX


def test_events_of_a_clip_with_head_turns(shared_data):
    frames, _, _ = decode_clip((shared_data / "video/d12.mp4").read_bytes(), fps=SAMPLE_FPS)
    kinds = {e.kind for e in detect_events(track(frames))}
    assert {"turn_left", "turn_right", "blink", "mouth_open"} <= kinds


def test_prompts_are_answered_by_held_actions_in_their_order():
    plan = [{"action": "turn_left", "start": 1.0, "end": 3.0}, {"action": "smile", "start": 3.0, "end": 5.0},
            {"action": "blink_twice", "start": 5.0, "end": 7.0}]
    answer = [Event("turn_left", 1.6, 2.2, 22.0), Event("smile", 3.5, 4.3, 1.3), Event("blink", 5.5, 5.5, 0.1),
              Event("blink", 6.0, 6.0, 0.1)]
    assert match_actions(answer, plan)["ok"]
    # a turn seen in two samples is the tracker's flicker or a glance, not a prompted turn
    flicker = match_actions([Event("turn_left", 1.6, 1.7, 22.0)] + answer[1:], plan)
    assert not flicker["ok"] and flicker["steps"][0] == {"action": "turn_left", "ok": False, "found": 0}
    assert not match_actions(answer[:3], plan)["ok"]  # one blink
    swapped = [Event("smile", 1.6, 2.2, 1.3), Event("turn_left", 3.5, 4.3, 22.0)] + answer[2:]
    assert [s["ok"] for s in match_actions(swapped, plan)["steps"]] == [True, False, True]


def test_spliced_clip_of_two_people_fails_identity(shared_data, work):
    a = frames_of(shared_data / "video/d3.mp4", fps=25)[:75]
    b = frames_of(shared_data / "video/d11.mp4", fps=25)[:75]
    clip = encode_frames(a + b, work / "splice.mp4", fps=25)
    frames, _, _ = decode_clip(clip.read_bytes(), fps=SAMPLE_FPS)
    sig = track(frames)
    ident = identity_consistency(frames, sig)
    assert not ident["ok"] and ident["max_distance"] > 0.6
    r = passive_check_bytes(clip.read_bytes())
    assert not r.live and any("identity" in x for x in r.reasons)


def test_lips_follow_their_own_speech_better_than_other_audio(shared_data, work):
    own = cut(shared_data / "video/d9.mp4", work / "own.mp4", 0, 8)
    frames, audio, _ = decode_clip(own.read_bytes(), fps=SAMPLE_FPS)
    sig = track(frames)
    _, other, _ = decode_clip((shared_data / "video/d10.mp4").read_bytes(), fps=SAMPLE_FPS)
    matched = av_sync(sig, audio, 16000)
    mismatched = av_sync(sig, other[: audio.size], 16000)
    assert matched["corr"] > 0.3 and matched["corr"] > mismatched["corr"] + 0.15


@pytest.fixture(scope="module")
def talking_mouths(shared_data):
    """12 clips of talking/ (4 people, and 8 sentences of GRID s1): the mouth tracked at SYNC_FPS as
    enrollment tracks it, and the clip's own 16 kHz audio."""
    from avatar.analysis.liveness import SYNC_FPS, mouth_track
    from avatar.analysis.media import MediaFile

    names = ["grid_gridU1_brbk7n", "grid_gridU2_lbax4n", "grid_gridU5_lwbsza", "grid_gridU6_sbia1a"] + [
        f"grid_s1_{s}" for s in ("bbaf2n", "bgwu7s", "lbax8n", "lrae4p", "pbav2n", "prac6n", "sbaa7a", "srabzn")]
    clips = {}
    for n in names:
        with MediaFile((shared_data / "talking" / f"{n}.mp4").read_bytes()) as mf:
            frames, audio = mf.clip(SAMPLE_FPS, max_side=640)
            clips[n] = (mouth_track(mf.iter_frames(SYNC_FPS, 640), track(frames), 0.0, 10.0), audio)
    return clips


def test_lip_sync_tells_a_persons_own_speech_from_others_on_real_talking(talking_mouths):
    """talking/: real people, 3 s sentences at 25 fps. Each clip's own audio passes lip_sync; another
    person's sentence, the same person's other sentence and the own audio moved by 0.3 s score lower
    on the whole, though all sentences share their coarse shape (av_sync could not tell them apart)."""
    from avatar.analysis.challenge import AV_SYNC_MIN
    from avatar.analysis.liveness import lip_sync

    clips = talking_mouths
    shift = np.zeros(int(0.3 * 16000), np.float32)
    own, others = [], []
    for n, (mouth, audio) in clips.items():
        assert mouth is not None and len(mouth.times) >= 70  # 25 fps
        own.append(lip_sync(mouth, audio, 16000)["corr"])
        others += [lip_sync(mouth, clips[o][1][: audio.size], 16000)["corr"] for o in clips if o != n]
        others += [lip_sync(mouth, np.concatenate([shift, audio[: -shift.size]]), 16000)["corr"],
                   lip_sync(mouth, np.concatenate([audio[shift.size:], shift]), 16000)["corr"]]
    assert min(own) >= AV_SYNC_MIN + 0.05, own
    assert np.median(own) > np.median(others) + 0.2, (own, np.median(others))


def test_a_crop_with_one_face_is_tracked_as_with_two(shared_data):
    """mouth_track meshes its crop for one face (faster: a two-face mesh runs its detector on every
    frame while it sees one); the landmarks are the same."""
    from avatar.analysis.liveness import SYNC_FPS

    frames, _, _ = decode_clip((shared_data / "talking/grid_gridU2_lbax4n.mp4").read_bytes(), fps=SYNC_FPS)
    one, two = track(frames, max_faces=1), track(frames, max_faces=2)
    assert one.present.all() and two.present.all()
    assert np.allclose(one.mouth_open, two.mouth_open) and np.allclose(one.eye_open, two.eye_open)


def test_sound_that_comes_late_is_named_and_still_refused(talking_mouths):
    """The same clips with their sound 120 ms late, as a wireless headset records it: lip_sync refuses
    most (its window stays ±SYNC_MAX_LAG), and for those the person is told the sound comes late,
    by about that much; on time, the lips pass as they are."""
    from avatar.analysis.challenge import AV_SYNC_MIN, HINTS, lips_failure
    from avatar.analysis.liveness import late_sound, lip_sync

    delay = np.zeros(int(0.12 * 16000), np.float32)
    refused = named = 0
    for mouth, audio in talking_mouths.values():
        assert lip_sync(mouth, audio, 16000)["corr"] >= AV_SYNC_MIN
        late = np.concatenate([delay, audio[: -delay.size]])
        sync = lip_sync(mouth, late, 16000)
        if sync["corr"] >= AV_SYNC_MIN:
            continue
        refused += 1
        found = late_sound(mouth, late, 16000)
        if found is not None and 0.08 <= found["lag"] <= 0.16:
            named += 1
            key, why = lips_failure(mouth, late, sync)
            assert key == "sound_late" and sync["late_sound"] == found and "later" in why and HINTS[key]
    assert refused >= 8 and named >= refused - 2, (refused, named)  # measured: 11 refused, all 11 named
