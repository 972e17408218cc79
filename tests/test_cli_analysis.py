"""`avatar eval`, `avatar liveness passive`, `avatar face check`: JSON on stdout, exit 0."""
import json
import subprocess
import sys

import pytest


def avatar(*args):
    proc = subprocess.run([sys.executable, "-m", "avatar.cli", *args], capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def test_face_check_json(shared_data):
    rc, out, _ = avatar("face", "check", str(shared_data / "faces/img1.jpg"), "--json")
    assert rc == 0 and json.loads(out)["ok"] is True and json.loads(out)["faces"] == 1
    rc, out, _ = avatar("face", "check", str(shared_data / "faces/couple.jpg"), "--json")
    r = json.loads(out)
    assert rc == 0 and r == {"ok": False, "faces": 2, "reason": "2 faces found; only one person may be in the picture"}
    rc, out, _ = avatar("face", "check", str(shared_data / "MANIFEST.md"), "--json")
    assert rc == 0 and json.loads(out)["ok"] is False


def test_liveness_passive_json(shared_data):
    rc, out, _ = avatar("liveness", "passive", str(shared_data / "video/d0.mp4"), "--json")
    r = json.loads(out)
    assert rc == 0 and r["live"] is True and set(r) >= {"live", "score", "reasons", "events"}
    rc, out, _ = avatar("liveness", "passive", str(shared_data / "stills/s11.jpg"), "--json")
    assert rc == 0 and json.loads(out)["live"] is False and json.loads(out)["reasons"]


def test_liveness_passive_bad_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    rc, _, err = avatar("liveness", "passive", str(bad), "--json")
    assert rc == 1 and "not a readable" in err


@pytest.mark.slow
def test_eval_faces_json(shared_data):
    rc, out, _ = avatar("eval", "faces", "--pairs", str(shared_data / "faces/pairs.csv"), "--images",
                        str(shared_data / "faces"), "--json")
    r = json.loads(out)
    assert rc == 0 and r["accuracy"] >= 0.97 and set(r) >= {"accuracy", "n", "threshold", "far", "frr"}


def test_eval_faces_counts_unusable_images_as_wrong(shared_data, tmp_path):
    (tmp_path / "a.jpg").write_bytes((shared_data / "faces/img1.jpg").read_bytes())
    (tmp_path / "b.jpg").write_bytes(b"broken")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("file_x,file_y,same\na.jpg,b.jpg,1\na.jpg,a.jpg,1\n")
    rc, out, _ = avatar("eval", "faces", "--pairs", str(pairs), "--images", str(tmp_path), "--json")
    r = json.loads(out)
    assert rc == 0 and r["accuracy"] == 0.5 and r["n"] == 2 and r["no_face"] == ["b.jpg"]


def test_eval_voices_json_on_a_small_set(shared_data, tmp_path):
    for spk in ("1688", "2033"):
        (tmp_path / spk).mkdir()
        for f in sorted((shared_data / "voices" / spk).glob("*.flac"))[:3]:
            (tmp_path / spk / f.name).write_bytes(f.read_bytes())
    rc, out, _ = avatar("eval", "voices", "--dir", str(tmp_path), "--json")
    r = json.loads(out)
    assert rc == 0 and r["speakers"] == 2 and r["utterances"] == 6 and set(r) >= {"eer", "threshold"}
    assert r["eer"] <= 0.2


def test_eval_voices_follows_symlinked_speaker_folders(shared_data, tmp_path):
    """Speaker folders linked into a corpus (as one points a tool at a dataset) are read, once each,
    even with a link back to the root."""
    for spk in ("1688", "2033"):
        (tmp_path / spk).symlink_to(shared_data / "voices" / spk, target_is_directory=True)
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    rc, out, err = avatar("eval", "voices", "--dir", str(tmp_path), "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert r["speakers"] == 2 and r["utterances"] == 20, r


def test_eval_codes_json_on_real_readers(shared_data, tmp_path):
    for f in sorted((shared_data / "digits_read").glob("*.wav"))[1:5]:
        (tmp_path / f.name).write_bytes(f.read_bytes())
        (tmp_path / f.with_suffix(".txt").name).write_text(f.with_suffix(".txt").read_text())
    rc, out, err = avatar("eval", "codes", "--dir", str(tmp_path), "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert set(r) >= {"n", "accepted", "false_accepts_random", "false_accepts_two_changed", "seconds_per_item"}
    assert r["n"] == 4 and r["accepted"] >= 3 and r["false_accepts_random"] == r["false_accepts_two_changed"] == 0


@pytest.mark.parametrize("make", ["missing", "empty", "no_text"])
def test_eval_codes_on_an_unusable_folder_is_a_clear_error(tmp_path, make):
    folder = tmp_path / "codes"
    if make != "missing":
        folder.mkdir()
    if make == "no_text":
        (folder / "a.wav").write_bytes(b"RIFF")
    rc, _, err = avatar("eval", "codes", "--dir", str(folder), "--json")
    assert rc == 1 and ("not a readable folder" in err or "no STEM.wav" in err), err
