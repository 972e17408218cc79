"""Idempotency-Key on the creating API requests (issue 24 item 3): a retry returns the first answer
and makes nothing new, a different body with the same key is a 422, and two requests with one key
at the same time make one generation."""
import io
import re
import threading

import sqlalchemy as sa

from avatar.store.models import Generation, IdempotencyKey, Job, LivenessSession
from tests.conftest import csrf_token
from tests.likeness_factory import approved_likeness

BODY = {"modality": "speech", "purpose": "personal", "script": "Hello, this is a note for my sister. See you soon."}


def _token(client, auth, services, shared_data=None) -> dict:
    """A bearer token of the approved subject (with shared_data), else of a new account."""
    if shared_data is not None:
        approved_likeness(services, shared_data)
        auth.login("subject@example.org")
    else:
        auth.register()
        auth.login()
    r = client.post("/account/tokens", data={"csrf_token": csrf_token(client, "/account/tokens"), "name": "script",
                                             "scope": ["generations", "enroll"]})
    token = re.search(r"(avt_[\w-]+)", r.get_data(as_text=True)).group(1)
    return {"Authorization": f"Bearer {token}"}


def _count(services, model) -> int:
    with services.db.session_scope() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_retried_generation_request_makes_one_generation(client, auth, services, shared_data):
    headers = _token(client, auth, services, shared_data)
    api = client.application.test_client()
    first = api.post("/api/generations", json=BODY, headers={**headers, "Idempotency-Key": "order-1"})
    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    again = api.post("/api/generations", json=dict(reversed(list(BODY.items()))),  # the same body, keys reordered
                     headers={**headers, "Idempotency-Key": "order-1"})
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert _count(services, Generation) == 1 and _count(services, Job) == 1
    # the same key with another request: refused, nothing made
    other = api.post("/api/generations", json={**BODY, "script": "Something else entirely, see you."},
                     headers={**headers, "Idempotency-Key": "order-1"})
    assert other.status_code == 422 and "different request" in other.get_json()["error"]
    # another key: a new generation; no key: a new one each time
    assert api.post("/api/generations", json=BODY, headers={**headers, "Idempotency-Key": "order-2"}).status_code == 202
    assert api.post("/api/generations", json=BODY, headers=headers).status_code == 202
    assert _count(services, Generation) == 3
    # a refusal is an answer too: replayed as it was
    bad = {**BODY, "purpose": "marketing"}
    r1 = api.post("/api/generations", json=bad, headers={**headers, "Idempotency-Key": "order-3"})
    r2 = api.post("/api/generations", json=bad, headers={**headers, "Idempotency-Key": "order-3"})
    assert r1.status_code == r2.status_code == 403 and r2.headers["Idempotent-Replayed"] == "true"
    for key in ("", "x" * 256, "has space", "naïve"):
        r = api.post("/api/generations", json=BODY, headers={**headers, "Idempotency-Key": key})
        assert r.status_code == 400 and "Idempotency-Key" in r.get_json()["error"], key
    assert _count(services, Generation) == 3


def test_two_requests_with_one_key_at_once_make_one_generation(client, auth, services, shared_data):
    headers = {**_token(client, auth, services, shared_data), "Idempotency-Key": "same-time"}
    answers, start = [], threading.Barrier(2)

    def post():
        api = client.application.test_client()
        start.wait()
        answers.append(api.post("/api/generations", json=BODY, headers=headers))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 2 and _count(services, Generation) == 1
    made = [a for a in answers if a.status_code == 202]
    # the second either waited and got the first answer again, or was told the first is still running
    assert made and all(a.status_code in (202, 409) for a in answers)
    assert len({a.get_json()["generation_id"] for a in made}) == 1


def test_a_retried_challenge_request_returns_the_same_challenge(client, auth, services):
    headers = {**_token(client, auth, services), "Idempotency-Key": "challenge-1"}
    api = client.application.test_client()
    first = api.post("/api/enroll/sessions", headers=headers)
    second = api.post("/api/enroll/sessions", headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true" and second.get_json()["nonce"] == first.get_json()["nonce"]
    assert _count(services, LivenessSession) == 1 and _count(services, IdempotencyKey) == 1


def test_keys_expire_after_their_window(client, auth, services):
    """An expired key starts afresh when reused, and the daily purge deletes expired keys."""
    from datetime import timedelta

    from avatar.domain.idempotency import WINDOW
    from avatar.jobs.core import enqueue, execute
    from avatar.store.db import utcnow

    headers = {**_token(client, auth, services), "Idempotency-Key": "old"}
    api = client.application.test_client()
    first = api.post("/api/enroll/sessions", headers=headers).get_json()["nonce"]
    with services.db.session_scope() as s:
        s.execute(sa.update(IdempotencyKey).values(created_at=utcnow() - WINDOW - timedelta(minutes=1)))
    again = api.post("/api/enroll/sessions", headers=headers)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers and again.get_json()["nonce"] != first
    with services.db.session_scope() as s:
        s.execute(sa.update(IdempotencyKey).values(created_at=utcnow() - WINDOW - timedelta(minutes=1)))
    job_id = enqueue(services, "media.purge_expired")
    assert execute(services, job_id) == "succeeded" and _count(services, IdempotencyKey) == 0


def test_odd_form_fields_do_not_break_the_key(client, auth, services):
    """Found by Schemathesis: a multipart field with an empty name made hashing the request fail
    (a 500). Any form the parser accepts is hashed; the route then answers as it would."""
    headers = {**_token(client, auth, services), "Idempotency-Key": "odd-form"}
    boundary = "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name=""\r\n\r\nnull\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="\u0080\x0f\\"\r\n\r\n{{}}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="\u0080\x0f\\"\r\n\r\ntrue\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="recording"; filename="recording"\r\n\r\n8x\r\n'
            f"--{boundary}--\r\n").encode()
    r = client.application.test_client().post("/api/enroll/sessions/no-such-nonce/recording", data=body, headers={
        **headers, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code in (400, 404), r.get_json()


def test_an_upload_is_bound_to_its_key_by_its_bytes(client, auth, services):
    """The recording upload's key binds the file's bytes (hashed in chunks): the same file again is
    the first answer replayed, another file with the same key a 422."""
    headers = {**_token(client, auth, services), "Idempotency-Key": "upload-1"}
    api = client.application.test_client()
    nonce = api.post("/api/enroll/sessions", headers=_token_only(headers)).get_json()["nonce"]

    def send(data: bytes):
        return api.post(f"/api/enroll/sessions/{nonce}/recording", headers=headers,
                        data={"recording": (io.BytesIO(data), "capture.webm")})

    first, again = send(b"not a video" * 1000), send(b"not a video" * 1000)
    assert first.status_code == again.status_code == 400 and again.headers["Idempotent-Replayed"] == "true"
    other = send(b"another file" * 1000)
    assert other.status_code == 422 and "different request" in other.get_json()["error"]


def _token_only(headers: dict) -> dict:
    return {k: v for k, v in headers.items() if k != "Idempotency-Key"}
