"""`avatar demo`: the whole chain on a throwaway instance, from the command line."""
import json

import pytest
from click.testing import CliRunner

from avatar.cli import main


@pytest.mark.slow
def test_demo_runs_the_whole_chain(tmp_path, shared_data):
    out = tmp_path / "demo"
    r = CliRunner().invoke(main, ["demo", "--out", str(out), "--data", str(shared_data)])
    assert r.exit_code == 0, r.output
    report = json.loads((out / "report.json").read_text())
    assert report["ok"] and all(step["ok"] for step in report["steps"]) and len(report["steps"]) == 14
    by_name = {step["step"]: step for step in report["steps"]}
    delivered = by_name["verify the clip as delivered"]["report"]
    assert delivered["generated"] and delivered["content_credentials"]["ours"] and delivered["generation_id"]
    assert by_name["verify after re-encoding to 360p at low bitrate"]["report"]["watermark"]["video"]["found"]
    assert by_name["the person withdraws consent; the clip now reads as revoked"]["report"]["revoked"] is True
    assert {"avatar.mp4", "avatar.mp4.c2pa.json", "capture.mp4", "report.json", "strip.png"} <= {
        p.name for p in out.iterdir()}
    # the clip is the person of the capture, made from their own frames
    compared = by_name["how the clip compares with the person's own capture (strip.png)"]
    assert compared["generated"]["identity_distance"] < 0.4 and compared["generated"]["face_found"] > 0.95
    assert compared["generated"]["bilabial_closure"]["ratio"] >= 0.8
    assert (out / "instance" / "avatar.db").is_file()


def test_demo_refuses_a_used_folder_or_missing_data(tmp_path, shared_data):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("mine")
    r = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "used"), "--data", str(shared_data)])
    assert r.exit_code == 1 and "not empty" in r.output
    assert [p.name for p in (tmp_path / "used").iterdir()] == ["keep.txt"]
    r = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "new"), "--data", str(tmp_path)])
    assert r.exit_code == 1 and "shared test data" in r.output and not (tmp_path / "new").exists()


def test_a_reading_opens_the_footage_mouth_where_it_is_voiced():
    """assemble_capture(reading=…): the statement's frames are mouth-opening footage wherever the
    reading is voiced and closed-mouth footage elsewhere, from READING_LEAD on."""
    import numpy as np

    from avatar.demo.footage import READING_LEAD, SR, _lips_on_speech

    rng = np.random.default_rng(0)
    speech = np.zeros(2 * SR, np.float32)
    speech[int(0.5 * SR): int(0.9 * SR)] = 0.5 * rng.standard_normal(int(0.4 * SR))  # one word, 0.5–0.9 s
    speech += 1e-4 * rng.standard_normal(speech.size).astype(np.float32)
    frames = _lips_on_speech(speech, opens=[(100, 104)], closed=[0, 1, 2], fps=25)
    is_open = np.array([f >= 100 for f in frames])
    t = (np.flatnonzero(is_open) / 25) - READING_LEAD
    assert 0.4 <= t.min() <= 0.55 and 0.8 <= t.max() <= 0.95, t
    assert is_open.sum() == len(t) and not is_open[: int(READING_LEAD * 25)].any()


def test_stored_digit_takes_are_what_whisper_hears_and_a_stale_entry_is_heard_again(shared_data, tmp_path,
                                                                                    monkeypatch):
    """clear_digit_takes.json holds every speaker's and digit's recordings of digits/ under their own
    SHA-256 and this recognizer, in the order Whisper gives them now; an entry whose recordings
    differ, or a broken file, is not used: the takes are heard."""
    from avatar.demo import footage

    digits = shared_data / "digits"
    stored = json.loads(footage.CLEAR_TAKES_FILE.read_text())
    assert stored["recognizer"] == footage.recognizer_id()
    assert len(stored["takes"]) == 30
    for name, entry in stored["takes"].items():
        speaker, digit = name.split("/")
        assert entry["sha256"] == footage.takes_key(digits, digit, speaker), name
    assert footage.hear_takes(digits, "7", "lucas") == stored["takes"]["lucas/7"]["order"]

    heard = []
    monkeypatch.setattr(footage, "hear_takes", lambda d, digit, speaker: heard.append((digit, speaker)) or [9, 8])
    monkeypatch.setattr(footage, "_CLEAR_TAKES", {})
    monkeypatch.setattr(footage, "CLEAR_TAKES_FILE", tmp_path / "takes.json")
    try:
        stale = dict(stored["takes"]["lucas/7"], sha256="0" * 64)
        footage.CLEAR_TAKES_FILE.write_text(json.dumps({"recognizer": footage.recognizer_id(),
                                                        "takes": {"lucas/7": stale, "lucas/3": stored["takes"]["lucas/3"]}}))
        footage._stored_takes.cache_clear()
        assert footage.clear_takes(digits, "3", "lucas") == stored["takes"]["lucas/3"]["order"] and not heard
        assert footage.clear_takes(digits, "7", "lucas") == [9, 8] and heard == [("7", "lucas")]
        footage.CLEAR_TAKES_FILE.write_text("{not json")
        footage._stored_takes.cache_clear()
        assert footage.clear_takes(digits, "5", "george") == [9, 8] and heard[-1] == ("5", "george")
    finally:
        footage._stored_takes.cache_clear()


def test_sensor_noise_is_seeded_spread_as_asked_and_saturates():
    """SensorNoise (the test media's camera noise): the same seed gives the same frames, each frame
    fresh noise of about sigma grey levels on every channel, clipped at black and white; float
    pictures (a screen replay's) are taken as grey levels."""
    import numpy as np

    from avatar.demo.media import SensorNoise

    grey = np.full((120, 160, 3), 128, np.uint8)
    first = SensorNoise(3.0, seed=4)
    a, b = first(grey), first(grey)
    again = SensorNoise(3.0, seed=4)
    assert np.array_equal(again(grey), a) and np.array_equal(again(grey), b)
    assert not np.array_equal(a, b)  # fresh on every frame
    spread = (a.astype(int) - 128).reshape(-1, 3).std(axis=0)
    assert np.all(np.abs(spread - 3.0) < 0.15) and abs(float((a.astype(int) - 128).mean())) < 0.1
    noise = SensorNoise(3.0)
    black, white = noise(np.zeros((50, 50, 3), np.uint8)), noise(np.full((50, 50, 3), 255, np.uint8))
    assert black.min() == 0 and 0 < black.mean() < 3 and white.max() == 255 and 252 < white.mean() < 255
    assert np.array_equal(SensorNoise(0)(np.full((4, 4, 3), 300.0)), np.full((4, 4, 3), 255, np.uint8))
