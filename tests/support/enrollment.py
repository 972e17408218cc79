"""An account and an enrollment driven through the JSON API, as the tests of enrollment, review and
assisted enrollment need them."""
import io
from datetime import timedelta

import sqlalchemy as sa

from avatar.jobs.core import execute
from avatar.store.models import LivenessSession
from tests.conftest import STRONG_PASSWORD, csrf_token


def login(client, services, email="ada@example.org", name="Ada Lovelace"):
    from avatar.domain.accounts import register

    with services.db.session_scope() as s:
        uid = register(s, email, name, STRONG_PASSWORD).id
    token = csrf_token(client)
    client.post("/auth/login", data={"email": email, "password": STRONG_PASSWORD, "csrf_token": token})
    return uid


def api_post(client, url, **kw):
    token = csrf_token(client, "/enroll/capture")
    return client.post(url, headers={"X-CSRFToken": token, "Accept": "application/json"}, **kw)


def new_session(client):
    resp = api_post(client, "/api/enroll/sessions")
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def upload(client, nonce, data, name="capture.mp4", mimetype="video/mp4", **fields):
    return api_post(client, f"/api/enroll/sessions/{nonce}/recording",
                    data={"recording": (io.BytesIO(data), name, mimetype), **fields}, content_type="multipart/form-data")


def backdate(services, nonce, seconds=30):
    """The capture takes ~15 s to record: move the issue time back as a real client's would be."""
    with services.db.session_scope() as s:
        ls = s.scalar(sa.select(LivenessSession).where(LivenessSession.nonce == nonce))
        ls.issued_at -= timedelta(seconds=seconds)


def run_capture(client, services, data):
    ch = new_session(client)
    backdate(services, ch["nonce"])
    resp = upload(client, ch["nonce"], data)
    assert resp.status_code == 202, resp.get_json()
    job_id = resp.get_json()["job_id"]
    assert execute(services, job_id) == "succeeded"
    return client.get(f"/api/jobs/{job_id}").get_json()["result"]


def give_consent(client, face=True, voice=False):
    token = csrf_token(client, "/enroll/consent")
    data = {"csrf_token": token, "personal": "y", "days": "365"}
    if face:
        data["face"] = "y"
    if voice:
        data["voice"] = "y"
    return client.post("/enroll/consent", data=data)
