"""Enrollment through the JSON API with uploaded files: a passing capture assembled from real
footage for a seeded challenge, every bad input, attack captures, lockout and the likeness guard."""
import io
import json
from datetime import timedelta

import numpy as np
import pytest
import soundfile as sf
import sqlalchemy as sa

from avatar.config import Config, ConfigError
from avatar.demo.media import digit_audio
from avatar.domain.actor import Actor
from avatar.domain.challenges import MAX_PROMPT_LAG, draw
from avatar.jobs.core import execute
from avatar.store.db import utcnow
from avatar.store.models import Enrollment, FaceProfile, LivenessSession, MediaObject, User, VoiceProfile
from tests.conftest import ACTIONS, CODE, SEED, STRONG_PASSWORD, app_on_copy, csrf_token, make_app
from tests.support.enrollment import api_post, give_consent, login, new_session, run_capture, upload

pytestmark = pytest.mark.app_config(CHALLENGE_SEED=SEED)


def test_challenge_is_seeded_only_in_tests():
    with pytest.raises(ConfigError, match="tests only"):
        Config.from_env(environ={"AVATAR_CHALLENGE_SEED": "3"})
    assert Config.from_env(environ={"AVATAR_CHALLENGE_SEED": "3", "AVATAR_TESTING": "1"}).CHALLENGE_SEED == 3


def test_challenge_contents(client, services):
    login(client, services)
    ch = new_session(client)
    assert [a["action"] for a in ch["plan"]["actions"]] == ACTIONS and ch["code"] == CODE
    assert "Ada Lovelace" in ch["statement"] and " ".join(CODE) in ch["statement"]
    assert 3 <= len(ch["plan"]["actions"]) <= 4 and len(ch["nonce"]) >= 32


def test_unseeded_challenges_vary():
    draws = {tuple(draw()[0]) for _ in range(30)}
    codes = {draw()[1] for _ in range(30)}
    assert len(draws) > 10 and len(codes) > 25


@pytest.fixture(scope="module")
def captured_instance(tmp_path_factory, passing_clip):
    """An instance where Ada passed the capture with the passing clip, built once for the tests that
    start there (a full capture check is seconds of analysis); (instance folder, her id, the job's
    result)."""
    base = tmp_path_factory.mktemp("captured")
    app = make_app(base, CHALLENGE_SEED=SEED)
    client, services = app.test_client(), app.extensions["avatar"]
    try:
        uid = login(client, services)
        result = run_capture(client, services, passing_clip)
    finally:
        services.close()
    return base / "instance", uid, result


@pytest.fixture
def captured(tmp_path, captured_instance):
    """A copy of captured_instance (database, media, keys) served by its own app, Ada logged in:
    (client, services, her id, the capture job's result)."""
    folder, uid, result = captured_instance
    app = app_on_copy(folder, tmp_path, CHALLENGE_SEED=SEED)
    client = app.test_client()
    client.post("/auth/login", data={"email": "ada@example.org", "password": STRONG_PASSWORD,
                                     "csrf_token": csrf_token(client)})
    yield client, app.extensions["avatar"], uid, result
    app.extensions["avatar"].close()


@pytest.mark.slow
def test_passing_capture_creates_profiles_from_the_capture(captured):
    client, services, uid, result = captured
    assert result == {"passed": True, "hint": None}
    with services.db.session_scope() as s:
        enr = s.scalar(sa.select(Enrollment).where(Enrollment.user_id == uid))
        assert enr.state == "captured"
        face = s.scalar(sa.select(FaceProfile).where(FaceProfile.enrollment_id == enr.id))
        voice = s.scalar(sa.select(VoiceProfile).where(VoiceProfile.enrollment_id == enr.id))
        ref = services.media.get(s, s.get(MediaObject, face.reference_media_id))
        assert ref.startswith(b"\x89PNG")
        assert voice is not None and voice.voiced_seconds > 1
        kinds = {m.kind for m in s.scalars(sa.select(MediaObject).where(MediaObject.subject_id == uid))}
        assert {"evidence", "face_template", "face_ref", "voice_template", "voice_ref", "face_footage"} <= kinds
        raw = services.media.blobs.read(s.get(MediaObject, face.reference_media_id).storage_key)
        assert b"PNG" not in raw[:64]  # stored encrypted
        footage = services.media.get(s, s.get(MediaObject, face.footage_media_id))
        assert b"ftyp" not in services.media.blobs.read(s.get(MediaObject, face.footage_media_id).storage_key)[:64]
        # the offline voice's analysis of the voice, made by the job, stored encrypted with the profile
        analysis = services.media.get(s, s.get(MediaObject, voice.analysis_media_id))
        assert b"PK" not in services.media.blobs.read(s.get(MediaObject, voice.analysis_media_id).storage_key)[:4]
        reference = services.media.get(s, s.get(MediaObject, voice.reference_media_id))
    from avatar.analysis.media import decode_audio
    from avatar.synthesis.speech.offline import prime_voice

    assert prime_voice(decode_audio(reference), analysis)  # made from the reference as a generation decodes it
    # the footage is the statement, read facing the camera, with its sound: what the talking head is made of
    from avatar.analysis.media import MediaFile
    from avatar.domain.challenges import STATEMENT_SECONDS

    with MediaFile(footage) as mf:
        assert mf.probe.has_audio and mf.probe.fps == 25
        assert abs(mf.probe.duration - STATEMENT_SECONDS) < 0.5
        from avatar.synthesis.video.example_based import footage_model

        assert len(footage_model(footage, 256).frames) > 0.9 * 25 * STATEMENT_SECONDS


def test_bad_inputs(client, services, shared_data, app):
    login(client, services)
    ch = new_session(client)
    assert ch["max_prompt_lag"] == MAX_PROMPT_LAG and ch["record_tail"] > 0
    shown = [s["start"] + 0.2 for s in ch["plan"]["actions"]] + [ch["plan"]["statement"]["start"] + 0.3]
    video = (shared_data / "video/d12.mp4").read_bytes()
    assert upload(client, "not-a-nonce", video).status_code == 404
    r = upload(client, ch["nonce"], b"corrupt" * 500)
    assert r.status_code == 400 and "Unusable recording" in r.get_json()["error"]
    r = upload(client, ch["nonce"], (shared_data / "faces/img1.jpg").read_bytes(), "x.jpg", "image/jpeg")
    assert r.status_code == 400 and "not a video" in r.get_json()["error"]
    r = upload(client, ch["nonce"], (shared_data / "video/d0.mp4").read_bytes())
    assert r.status_code == 400 and "no audio track" in r.get_json()["error"]
    r = api_post(client, f"/api/enroll/sessions/{ch['nonce']}/recording", data={}, content_type="multipart/form-data")
    assert r.status_code == 400 and "recording" in r.get_json()["error"]
    r = upload(client, ch["nonce"], video, prompt_times="[1, 3, 2, 9]")
    assert r.status_code == 400 and "prompt_times must increase" in r.get_json()["error"]
    app.config["MAX_CONTENT_LENGTH"] = 100_000
    assert upload(client, ch["nonce"], video).status_code == 413
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024
    with services.db.session_scope() as s:  # none of the refused uploads consumed the nonce or left media
        assert s.scalar(sa.select(LivenessSession.used_at).where(LivenessSession.nonce == ch["nonce"])) is None
        assert s.scalar(sa.select(sa.func.count(MediaObject.id))) == 0
    assert upload(client, ch["nonce"], video, prompt_times=json.dumps(shown)).status_code == 202
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(LivenessSession.prompt_times).where(LivenessSession.nonce == ch["nonce"])) == shown
    r = upload(client, ch["nonce"], video)
    assert r.status_code == 409 and "already used" in r.get_json()["error"]


def test_expired_session_and_someone_elses_nonce(client, services, shared_data):
    login(client, services)
    ch = new_session(client)
    with services.db.session_scope() as s:
        ls = s.scalar(sa.select(LivenessSession).where(LivenessSession.nonce == ch["nonce"]))
        ls.expires_at = utcnow() - timedelta(seconds=1)
    r = upload(client, ch["nonce"], (shared_data / "video/d12.mp4").read_bytes())
    assert r.status_code == 400 and "expired" in r.get_json()["error"]
    other = new_session(client)
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/account")})
    login(client, services, "eve@example.org", "Eve Example")
    r = upload(client, other["nonce"], (shared_data / "video/d12.mp4").read_bytes())
    assert r.status_code == 404


@pytest.mark.slow
@pytest.mark.parametrize("attack,hint", [
    ("still image", "oval"), ("another person's clip", "prompts"), ("wrong order", "prompts"),
    ("missing code", "code"), ("silence", "statement"), ("spliced code", "own voice"),
])
def test_failing_captures_get_a_hint_not_scores(client, services, attack_clips, passing_clip, attack, hint):
    login(client, services)
    result = run_capture(client, services, attack_clips[attack].read_bytes())
    assert result["passed"] is False and hint in result["hint"] and set(result) == {"passed", "hint", "locked"}


def test_five_failures_in_three_minutes_lock_enrolling(client, services):
    from avatar.domain import TooManyAttempts
    from avatar.domain import enrollment as rules

    uid = login(client, services)
    with services.db.session_scope() as s:
        user = s.get(User, uid)
        for _ in range(5):
            ls = rules.start(s, user, "Avatar", by=Actor("web", user_id=user.id))
            ls.used_at = utcnow()
            locked = rules.record_failure(s, user, ls, {"failures": ["test"]})
        assert locked and user.enroll_locked_until > utcnow() + timedelta(minutes=29)
        with pytest.raises(TooManyAttempts):
            rules.start(s, user, "Avatar", by=Actor("web", user_id=user.id))
    r = api_post(client, "/api/enroll/sessions")
    assert r.status_code == 429 and "try again" in r.get_json()["error"]


@pytest.mark.slow
def test_guard_blocks_a_face_that_belongs_to_another_account(captured, passing_clip):
    client, services, a, _ = captured  # Ada passed the capture
    assert give_consent(client, voice=True).status_code == 400  # too little speech for a voice
    assert give_consent(client).status_code == 302
    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/account")})
    b = login(client, services, "second@example.org", "Second Person")
    assert run_capture(client, services, passing_clip)["passed"]
    assert give_consent(client).status_code == 302
    with services.db.session_scope() as s:
        first = s.scalar(sa.select(Enrollment).where(Enrollment.user_id == a))
        second = s.scalar(sa.select(Enrollment).where(Enrollment.user_id == b))
        assert first.state == second.state == "submitted"
        assert not first.guard["blocked"]
        assert second.guard["blocked"] and second.guard["face"]["owner_id"] == a
        assert second.guard["face"]["label"] == "Ada Lovelace" and "guard_match" in second.flags


@pytest.mark.slow
def test_paragraph_reading_extends_the_voice_only_for_the_same_speaker(captured, shared_data):
    client, services, uid, _ = captured  # Ada passed the capture
    same = np.concatenate([np.concatenate([digit_audio(shared_data / "digits", str(d % 10), "george", take=t),
                                           np.zeros(2000, np.float32)]) for t in range(3) for d in range(10)])
    other = (shared_data / "voices/1688/1688-142285-0000.flac").read_bytes()
    buf = io.BytesIO()
    sf.write(buf, same, 16000, format="WAV")

    def send(data, name):
        r = api_post(client, "/api/enroll/paragraph", data={"audio": (io.BytesIO(data), name, "audio/wav")},
                     content_type="multipart/form-data")
        assert r.status_code == 202, r.get_json()
        execute(services, r.get_json()["job_id"])
        return client.get(f"/api/jobs/{r.get_json()['job_id']}").get_json()["result"]

    def analysis_id():
        with services.db.session_scope() as s:
            return s.scalar(sa.select(VoiceProfile.analysis_media_id).join(Enrollment).where(Enrollment.user_id == uid))

    assert send(other, "other.flac")["accepted"] is False
    before = analysis_id()
    res = send(buf.getvalue(), "same.wav")
    assert res["accepted"] is True and res["voiced_seconds"] >= 10
    with services.db.session_scope() as s:  # the longer voice has its own analysis; the old one is deleted
        assert analysis_id() not in (None, before) and s.get(MediaObject, before).deleted_at is not None
    assert give_consent(client, voice=True).status_code == 302
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(Enrollment.state).where(Enrollment.user_id == uid)) == "submitted"
