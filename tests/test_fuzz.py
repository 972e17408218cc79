"""Bad-input fuzzing (hypothesis) of the upload and form endpoints: never a 500, never a row or
a blob left behind by a refused request, the challenge nonce not consumed by junk."""
import io
import os

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avatar.store.models import ApiToken, Delegation, Generation, Job, LivenessSession, MediaObject, User
from tests.conftest import csrf_token, row_counts

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# junk that starts like real containers, so the decoders get past the first bytes
MAGIC = [b"", b"\x1a\x45\xdf\xa3", b"\x00\x00\x00\x18ftypmp42", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"OggS", b"ID3",
         b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"fLaC"]
uploads = st.builds(lambda magic, body: magic + body, st.sampled_from(MAGIC), st.binary(min_size=0, max_size=4096))
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)


def _counts(services):
    return row_counts(services, User, MediaObject, Job, Generation, Delegation, ApiToken)


def _blob_files(app):
    root = app.config["AVATAR"].MEDIA_PATH
    return sum(len(files) for _, _, files in os.walk(root)) if os.path.isdir(root) else 0


@pytest.fixture
def user_client(client, auth):
    auth.register()
    auth.login()
    return client


@pytest.fixture
def challenge(user_client):
    """One challenge for all examples: junk must never consume it."""
    token = csrf_token(user_client, "/enroll/capture")
    return user_client.post("/api/enroll/sessions", headers={"X-CSRFToken": token}).get_json()["nonce"], token


@FUZZ
@given(data=uploads, name=st.text(max_size=40), mimetype=st.sampled_from(["video/webm", "video/mp4", "audio/wav",
                                                                           "text/html", "application/octet-stream"]))
def test_recording_upload_fuzz(app, services, user_client, challenge, data, name, mimetype):
    nonce, token = challenge
    before, files = _counts(services), _blob_files(app)
    r = user_client.post(f"/api/enroll/sessions/{nonce}/recording", headers={"X-CSRFToken": token},
                         data={"recording": (io.BytesIO(data), name or "x", mimetype)}, content_type="multipart/form-data")
    assert r.status_code in (400, 413), r.status_code
    assert r.get_json()["error"]
    assert _counts(services) == before and _blob_files(app) == files
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(LivenessSession.used_at).where(LivenessSession.nonce == nonce)) is None


def test_memory_stays_bounded_over_many_refused_uploads(services, user_client, challenge, shared_data):
    """Refused uploads that get deep into the decoders (real media cut or with a real header and
    junk after it) leave nothing behind in memory: after a warm-up, 60 more keep the process's
    resident memory within 40 MB."""
    import gc
    import random

    import psutil

    nonce, token = challenge
    video = (shared_data / "video/d12.mp4").read_bytes()
    rng = random.Random(7)
    samples = [video[len(video) // 2:], video[len(video) // 3:], video[:4096] + rng.randbytes(300_000),
               b"RIFF\xff\xff\xff\x7fWAVEfmt " + rng.randbytes(200_000), video[::2], rng.randbytes(500_000)]

    def post(data):
        r = user_client.post(f"/api/enroll/sessions/{nonce}/recording", headers={"X-CSRFToken": token},
                             data={"recording": (io.BytesIO(data), "c.mp4", "video/mp4")},
                             content_type="multipart/form-data")
        assert r.status_code == 400, r.status_code

    for data in samples:
        post(data)
    gc.collect()
    start = psutil.Process().memory_info().rss
    for _ in range(10):
        for data in samples:
            post(data)
    gc.collect()
    growth = psutil.Process().memory_info().rss - start
    assert growth < 40 * 2**20, f"resident memory grew by {growth / 2**20:.0f} MB"
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(LivenessSession.used_at).where(LivenessSession.nonce == nonce)) is None


@FUZZ
@given(data=uploads)
def test_public_verify_fuzz(app, services, client, data):
    files = {"file": (io.BytesIO(data), "f.bin")}
    before = _counts(services)
    r = client.post("/api/verify", data=files, content_type="multipart/form-data")
    assert r.status_code in (200, 400), r.status_code
    if r.status_code == 200:
        assert r.get_json()["generated"] is False
    assert _counts(services) == before


@FUZZ
@given(email=text, name=text, password=text, script=text, purpose=text, modality=text, days=text)
def test_forms_fuzz(app, services, user_client, email, name, password, script, purpose, modality, days):
    before = _counts(services)
    anon = app.test_client()
    r = anon.post("/auth/register", data={"csrf_token": csrf_token(anon, "/auth/register"), "email": email,
                                          "full_name": name, "password": password, "confirm": password})
    assert r.status_code in (200, 302, 400), r.status_code
    registered = r.status_code == 302
    for url, page, fields in [
        ("/generate", "/generate", {"script": script, "purpose": purpose, "modality": modality, "subject": days}),
        ("/account/delegations", "/account/delegations", {"email": email, "modality": modality, "purpose": purpose,
                                                          "days": days}),
        ("/account/tokens", "/account/tokens", {"name": name}),
    ]:
        r = user_client.post(url, data={"csrf_token": csrf_token(user_client, page), **fields})
        assert r.status_code < 500, (url, r.status_code)
    after = _counts(services)
    assert after["Generation"] == before["Generation"] and after["Delegation"] == before["Delegation"]
    # a taken email gets the same 302 as a new one, and adds no account
    assert after["User"] - before["User"] in ((0, 1) if registered else (0,))
    assert after["MediaObject"] == before["MediaObject"]
