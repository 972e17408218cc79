"""What an attacker's probe found at the edges (issue 23): recordings that hide their length,
anonymous verification, ids beyond 64 bits, JSON nested too deep, an upload torn between commits,
a media folder that cannot be written, temporary files left by a killed process, and a watermark
that anyone could forge."""
from __future__ import annotations

import io
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from scipy.signal import resample_poly

from avatar.analysis.media import Limits, MediaError, MediaFile, decode_audio, sweep_temp_dir, wav_bytes
from avatar.demo.hostile_media import long_webm, nested_json
from avatar.store.models import AuditEvent, Generation, Job, LivenessSession, MediaObject
from tests.conftest import AuthActions, csrf_token, make_app, row_counts
from tests.mounts import tmpfs


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile")
    return {"hour": long_webm(d / "hour.webm", 3600), "ten_minutes": long_webm(d / "ten.webm", 600),
            "eighty": long_webm(d / "eighty.webm", 80)}


def _login(client, services, email="ada@example.org"):
    auth = AuthActions(client, services)
    auth.create(email)
    auth.login(email)
    return csrf_token(client, "/enroll/capture")


# -- decoding is bounded whatever the container says -------------------------------------------------
def test_a_recording_without_a_duration_header_is_measured_and_refused(hostile):
    data = hostile["hour"].read_bytes()
    assert len(data) < 5 * 1024 * 1024
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                            str(hostile["hour"])], capture_output=True, text=True).stdout.strip()
    assert probe == "N/A"  # what MediaRecorder's files look like to a probe
    t = time.monotonic()
    with pytest.raises(MediaError, match="too long"):
        MediaFile(data, Limits(max_seconds=90))
    assert time.monotonic() - t < 30  # demuxing only; generous for a loaded machine


def test_decoding_stops_at_the_window_asked_for(hostile):
    with MediaFile(hostile["eighty"].read_bytes(), Limits(max_seconds=90)) as mf:
        assert 79 < mf.probe.duration < 82
        frames, audio = mf.clip(10, max_side=640, seconds=20)
        assert len(frames) <= 201 and audio.size <= 20 * 16000
        assert sum(1 for _ in mf.iter_frames(10, 256, seconds=5)) <= 51


# -- the anonymous verify API ----------------------------------------------------------------------------
def test_anonymous_verify_answers_hostile_files_in_seconds(client, hostile):
    for name, expected in (("hour", 400), ("ten_minutes", 200)):
        t = time.monotonic()
        r = client.post("/api/verify", data={"file": (io.BytesIO(hostile[name].read_bytes()), "x.webm")})
        assert r.status_code == expected, r.get_json()
        assert time.monotonic() - t < 60
    assert "too long" in client.post("/api/verify", data={"file": (io.BytesIO(hostile["hour"].read_bytes()),
                                                                     "x.webm")}).get_json()["error"]


def test_anonymous_verify_is_rate_limited_per_address(tmp_path):
    app = make_app(tmp_path, VERIFY_RATE_PER_MINUTE=2)
    client = app.test_client()
    for left in (1, 0):  # a well-behaved client sees how close it is (IETF RateLimit header fields)
        r = client.post("/api/verify", data={"file": (io.BytesIO(b"not media"), "x.bin")})
        assert r.status_code == 400
        assert (r.headers["RateLimit-Limit"], r.headers["RateLimit-Remaining"]) == ("2", str(left))
        assert 1 <= int(r.headers["RateLimit-Reset"]) <= 61
    r = client.post("/api/verify", data={"file": (io.BytesIO(b"not media"), "x.bin")})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and r.headers["RateLimit-Remaining"] == "0"
    other = client.post("/api/verify", data={"file": (io.BytesIO(b"x"), "x.bin")}, environ_base={"REMOTE_ADDR": "10.2.3.4"})
    assert other.status_code == 400
    app.extensions["avatar"].close()


def test_enrollment_upload_refuses_a_recording_that_hides_its_length(client, services, hostile):
    token = _login(client, services)
    nonce = client.post("/api/enroll/sessions", headers={"X-CSRFToken": token}).get_json()["nonce"]
    r = client.post(f"/api/enroll/sessions/{nonce}/recording", headers={"X-CSRFToken": token},
                    data={"recording": (io.BytesIO(hostile["hour"].read_bytes()), "capture.webm")})
    assert r.status_code == 400 and "too long" in r.get_json()["error"]
    assert row_counts(services, Job, MediaObject) == {"Job": 0, "MediaObject": 0}


# -- ids, JSON --------------------------------------------------------------------------------------------
def test_ids_beyond_64_bits_are_404_on_every_route(app, client, services):
    _login(client, services)
    huge = str(2 ** 64 + 5)
    checked = 0
    for rule in app.url_map.iter_rules():
        if "int:" not in str(rule.rule) and not any(t == "int" for t in (rule._converters or {})):
            continue
        url = rule.rule
        for name in rule._converters:
            url = url.replace(f"<int:{name}>", huge).replace(f"<{name}>", "x")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            r = client.open(url, method=method, headers={"X-CSRFToken": csrf_token(client, "/account")})
            assert r.status_code == 404, (method, url, r.status_code)
            checked += 1
    assert checked >= 8
    r = client.post("/api/generations", json={"subject_id": 2 ** 70, "modality": "speech", "purpose": "personal",
                                              "script": "hello"}, headers={"X-CSRFToken": csrf_token(client, "/account")})
    assert r.status_code == 400 and "1 to 2^63-1" in r.get_json()["error"]  # out of the contract's range


def test_json_nested_too_deep_is_a_400(client, services):
    token = _login(client, services)
    r = client.post("/api/generations", data=nested_json(50_000), content_type="application/json",
                    headers={"X-CSRFToken": token})
    assert r.status_code == 400


# -- one upload, one transaction ------------------------------------------------------------------------
STEPS = ["media", "job", "audit", "commit", "runner"]


@pytest.mark.parametrize("step", STEPS)
def test_an_upload_is_one_transaction_whichever_step_fails(tmp_path, shared_data, monkeypatch, step):
    """Each step of the recording upload fails in turn. Before the commit: 503 'nothing was saved',
    and truly nothing is (no row, no blob, the challenge still open, no job, no audit event). After
    the commit (the runner's broker is down): the answer says it is saved, and it all is."""
    from sqlalchemy.exc import OperationalError

    from avatar.jobs.core import RunnerUnavailable
    from avatar.store import audit
    from avatar.web import enroll

    app = make_app(tmp_path)
    services = app.extensions["avatar"]
    client = app.test_client()
    token = _login(client, services)
    nonce = client.post("/api/enroll/sessions", headers={"X-CSRFToken": token}).get_json()["nonce"]
    before = row_counts(services, Job, MediaObject, AuditEvent)
    locked = OperationalError("COMMIT", {}, Exception("database is locked"))

    def boom(*a, **k):
        raise locked

    if step == "media":
        monkeypatch.setattr(services.media.blobs, "write", boom)
    elif step == "job":
        monkeypatch.setattr(enroll, "add_job", boom)
    elif step == "audit":
        monkeypatch.setattr(audit, "append", boom)
    elif step == "commit":
        from sqlalchemy import event
        from sqlalchemy.orm import Session

        def fail_commit(session):
            if session.info.get("avatar.pending_blobs"):
                raise locked
        event.listen(Session, "before_commit", fail_commit)
    else:
        class DownRunner:
            def submit(self, job_id):
                raise RunnerUnavailable("broker unreachable")
        services.runner = DownRunner()
    try:
        r = client.post(f"/api/enroll/sessions/{nonce}/recording", headers={"X-CSRFToken": token},
                        data={"recording": (io.BytesIO((shared_data / "video/d12.mp4").read_bytes()), "c.mp4")})
    finally:
        if step == "commit":
            event.remove(Session, "before_commit", fail_commit)
        services.runner = None
    body = r.get_json()
    assert r.status_code == 503, body
    media_files = [p for p in (Path(services.config.MEDIA_PATH)).rglob("*") if p.is_file()]
    with services.db.session_scope() as s:
        ls = s.scalar(sa.select(LivenessSession).where(LivenessSession.nonce == nonce))
        actions = s.scalars(sa.select(AuditEvent.action)).all()
        if step != "runner":
            assert "nothing was saved" in body["error"]
            assert row_counts(services, Job, MediaObject, AuditEvent) == before
            assert ls.used_at is None and ls.recording_media_id is None and media_files == []
        else:
            assert "saved" in body["error"] and "nothing" not in body["error"]
            job = s.get(Job, ls.job_id)
            assert job.state == "queued" and ls.recording_media_id is not None and len(media_files) == 1
            assert "enrollment.capture_uploaded" in actions
    app.extensions["avatar"].close()


# -- a media folder that cannot be written ----------------------------------------------------------------
@pytest.fixture
def read_only_media(tmp_path):
    with tmpfs(tmp_path / "media-ro", "ro,size=1m,mode=0700") as mnt:
        yield mnt


def test_an_unwritable_media_folder_gives_503_and_readiness_says_so(tmp_path, read_only_media, shared_data):
    app = make_app(tmp_path, MEDIA_PATH=str(read_only_media))
    services = app.extensions["avatar"]
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["media"]["ok"] is False
    token = _login(client, services)
    nonce = client.post("/api/enroll/sessions", headers={"X-CSRFToken": token}).get_json()["nonce"]
    r = client.post(f"/api/enroll/sessions/{nonce}/recording", headers={"X-CSRFToken": token},
                    data={"recording": (io.BytesIO((shared_data / "video/d12.mp4").read_bytes()), "c.mp4")})
    assert r.status_code == 503 and "nothing you sent was saved" in r.get_json()["error"]
    assert row_counts(services, Job, MediaObject) == {"Job": 0, "MediaObject": 0}
    app.extensions["avatar"].close()


def test_files_and_folders_are_private(app, client, services, shared_data):
    token = _login(client, services)
    nonce = client.post("/api/enroll/sessions", headers={"X-CSRFToken": token}).get_json()["nonce"]
    r = client.post(f"/api/enroll/sessions/{nonce}/recording", headers={"X-CSRFToken": token},
                    data={"recording": (io.BytesIO((shared_data / "video/d12.mp4").read_bytes()), "c.mp4")})
    assert r.status_code == 202
    inst = Path(services.config.INSTANCE_PATH)
    for f in ("avatar.db", "avatar.db-wal", "avatar.db-shm"):
        if (inst / f).exists():
            assert (inst / f).stat().st_mode & 0o777 == 0o600, f
    media = Path(services.config.MEDIA_PATH)
    folders = [p for p in media.rglob("*") if p.is_dir()]
    assert folders and all(p.stat().st_mode & 0o777 == 0o700 for p in folders), folders


def test_temporary_copies_live_in_the_instance_and_a_dead_process_leftovers_are_swept(tmp_path):
    tmp = tmp_path / "instance" / "tmp"
    tmp.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    left = tmp / f"avatar-media-{dead.pid}-abc123"
    left.write_bytes(b"x" * 1000)
    mine = tmp / f"avatar-media-{os.getpid()}-def456"
    mine.write_bytes(b"y")
    app = make_app(tmp_path)  # Services sweeps at start
    assert not left.exists() and mine.exists()
    with MediaFile(wav_bytes(np.zeros(16000, np.float32))) as mf:
        assert Path(mf.path).parent == tmp
    assert sweep_temp_dir(tmp) == 0
    app.extensions["avatar"].close()


# -- the watermark belongs to this installation -------------------------------------------------------------
def _speech(shared_data) -> np.ndarray:
    f = sorted((shared_data / "voices").glob("*/*.flac"))[0]
    return resample_poly(decode_audio(f.read_bytes()), 3, 2).astype(np.float32)[: 24000 * 12]


def test_a_forged_or_foreign_watermark_does_not_read_as_generated_here(client, services, shared_data):
    from avatar.synthesis.label import audio_mark

    speech = _speech(shared_data)

    def check(audio):
        r = client.post("/api/verify", data={"file": (io.BytesIO(wav_bytes(audio, 24000)), "x.wav")})
        assert r.status_code == 200
        return r.get_json()

    foreign = check(audio_mark.embed(speech, 24000, "0badc0de", os.urandom(32)))  # another installation
    assert foreign["generated"] is False and foreign["watermark"]["id"] is None
    assert "No watermark or Content Credentials of this installation" in foreign["finding"]
    # someone holding this installation's key (or a generation deleted since) but naming no generation here
    unknown = check(audio_mark.embed(speech, 24000, "0badc0de", services.watermark_key))
    assert unknown["generated"] is False and unknown["watermark"]["id"] == "0badc0de"
    assert "no generation here has its id" in unknown["finding"]
    with services.db.session_scope() as s:
        s.add(Generation(requester_id=None, subject_id=1, modality="speech", purpose="personal", script="x",
                         backend="offline", watermark_id="0badc0de"))
    ours = check(audio_mark.embed(speech, 24000, "0badc0de", services.watermark_key))
    assert ours["generated"] is True and "made here" in ours["finding"]


def test_the_watermark_key_is_a_private_instance_secret(services, tmp_path):
    key = services.watermark_key
    assert len(key) == 32 and (Path(services.config.INSTANCE_PATH) / "watermark.key").stat().st_mode & 0o777 == 0o600
    from avatar.config import Config

    other = Config.from_env({}, {"INSTANCE_PATH": str(tmp_path / "other")})
    assert other.watermark_key() != key  # another installation has its own


# -- a body over the limit, at the real server ----------------------------------------------------------------
def test_a_real_server_answers_an_oversize_body_with_the_apps_json_413(tmp_path):
    import requests

    from tests.support.server import avatar_env, running_server

    with running_server(avatar_env(tmp_path, AVATAR_MAX_UPLOAD_MB="1")) as base:
        r = requests.post(f"{base}/api/verify", files={"file": ("x.bin", b"\0" * (2 * 1024 * 1024))}, timeout=30)
        assert r.status_code == 413 and r.headers["Content-Type"] == "application/json"
        assert r.json() == {"error": "The upload is too large: the limit is 1 MB.", "status": 413}


def test_a_form_field_without_a_readable_name_is_a_400_not_a_crash(client, services):
    """Found by Schemathesis: a multipart part whose name the parser cannot read (a quote escaped
    in its Content-Disposition) reached Flask-WTF's CSRF check as the key None, which crashed (500)
    for anyone, before any login."""
    boundary = "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="\u0080\x0f\\"\r\n\r\n{{}}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="email"\r\n\r\nx@example.org\r\n'
            f"--{boundary}--\r\n").encode()
    for url in ("/auth/login", "/api/verify", "/api/enroll/sessions/x/recording"):
        r = client.post(url, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 400 and "no readable name" in r.get_data(as_text=True), (url, r.status_code)
