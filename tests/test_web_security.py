"""Web security across every route: CSRF on every state-changing route, IDOR on every id in a URL,
stored XSS through scripts and labels, upload content sniffing, rate limits on challenges."""
import io
import re

import pytest
import sqlalchemy as sa

from avatar.domain import generation
from avatar.store.db import utcnow
from avatar.store.models import ApiToken, AuditEvent, Delegation, Generation, Job, User
from tests.conftest import STRONG_PASSWORD, csrf_token, row_counts
from tests.likeness_factory import approved_likeness

CSRF_EXEMPT = {"generate.verify_api"}  # read-only check that anyone may script; changes nothing
ARGS = {"endpoint_id": 1, "token_id": 1, "delegation_id": 1, "generation_id": 1, "user_id": 1, "enrollment_id": 1, "job_id": 1,
        "nonce": "unknown-nonce", "filename": "css/app.css"}


def _login(client, email):
    r = client.post("/auth/login", data={"email": email, "password": STRONG_PASSWORD, "csrf_token": csrf_token(client)})
    assert r.status_code == 302


def _state_changing(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"}):
            yield rule.endpoint, method, re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: str(ARGS[m.group(1)]), rule.rule)


def _rows(services):
    return row_counts(services, User, Generation, Job, Delegation, ApiToken, AuditEvent)


def test_every_state_changing_route_refuses_a_missing_or_forged_csrf_token(app, client, auth, services):
    auth.create("root@example.org", role="admin")
    _login(client, "root@example.org")
    before = _rows(services)
    checked = 0
    for endpoint, method, url in _state_changing(app):
        if endpoint in CSRF_EXEMPT:
            continue
        for headers in ({}, {"X-CSRFToken": "forged"}):
            r = client.open(url, method=method, headers=headers, data={"csrf_token": "forged"} if headers else {})
            assert r.status_code == 400, (endpoint, method, r.status_code)
            checked += 1
    assert checked >= 2 * 20 and _rows(services) == before  # nothing was written
    assert client.get("/account").status_code == 200  # and the session is intact


@pytest.fixture
def two_users(services, shared_data):
    """A subject with a generation, a token and a delegation, and a second ordinary user."""
    from avatar.domain.accounts import register
    from avatar.domain.actor import Actor
    from avatar.domain.delegations import create as delegate
    from avatar.domain.tokens import create as new_token

    subject = approved_likeness(services, shared_data)
    by = Actor("web", user_id=subject)
    with services.db.session_scope() as s:
        other = register(s, "mallory@example.org", "Mal Lory", STRONG_PASSWORD).id
        helper = register(s, "helper@example.org", "Hel Per", STRONG_PASSWORD).id
        gen = generation.request(s, services.gate, subject, subject, "speech", "personal",
                                 "Hello <img src=x onerror=alert(1)> friends", utcnow(), "offline", by=by)
        job = Job(name="generation.render", payload={"generation_id": gen.id}, owner_id=subject, subject_id=subject)
        s.add(job)
        s.flush()
        gen.job_id = job.id
        ids = {"generation_id": gen.id, "job_id": job.id,
               "token_id": new_token(s, s.get(User, subject), "laptop", ["generations"], by=by)[0].id,
               "delegation_id": delegate(s, s.get(User, subject), "helper@example.org", ["speech"], ["personal"], 30,
                                         utcnow(), by=by).id}
    return subject, other, helper, ids


def test_no_other_user_reaches_an_id_in_a_url(app, client, services, two_users):
    """Every route with a generation, job, token or delegation id answers 404 to a second user
    (GET and POST), exactly as for an id that does not exist."""
    _, _, _, ids = two_users
    _login(client, "mallory@example.org")
    token = csrf_token(client, "/account")
    checked = 0
    for rule in app.url_map.iter_rules():
        names = set(rule.arguments) & set(ids)
        if not names or rule.endpoint.startswith(("review.", "admin.")):
            continue  # reviewer/admin routes are role-checked in test_roles
        url = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: str(ids[m.group(1)]), rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            r = client.open(url, method=method, headers={"X-CSRFToken": token}, data={"csrf_token": token})
            assert r.status_code == 404, (rule.endpoint, method, r.status_code)
            checked += 1
    assert checked >= 8
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(sa.func.count(Delegation.id)).where(Delegation.revoked_at.is_(None))) == 1
        assert s.scalar(sa.select(sa.func.count(ApiToken.id)).where(ApiToken.revoked_at.is_(None))) == 1


def test_stored_scripts_and_names_are_escaped(client, services, two_users):
    _login(client, "subject@example.org")
    for page in ("/generate", "/account/delegations"):  # HTML; the JSON API is served as application/json
        body = client.get(page).get_data(as_text=True)
        assert "<img src=x" not in body, page
    assert "&lt;img src=x onerror=alert(1)&gt;" in client.get("/generate").get_data(as_text=True)
    helper = client.application.test_client()
    _login(helper, "helper@example.org")
    assert "<img" not in helper.get("/account/delegations").get_data(as_text=True)


@pytest.mark.parametrize("payload,name,mimetype", [
    (b"<html><script>alert(1)</script></html>", "capture.mp4", "video/mp4"),
    (b"GIF89a<script>alert(1)</script>", "capture.webm", "video/webm"),
    (b"%PDF-1.4 not a video", "capture.mp4", "video/mp4"),
])
def test_uploads_are_judged_by_content_not_by_name(client, auth, services, payload, name, mimetype):
    auth.register()
    auth.login()
    token = csrf_token(client, "/enroll/capture")
    ch = client.post("/api/enroll/sessions", headers={"X-CSRFToken": token}).get_json()
    r = client.post(f"/api/enroll/sessions/{ch['nonce']}/recording", headers={"X-CSRFToken": token},
                    data={"recording": (io.BytesIO(payload), name, mimetype)}, content_type="multipart/form-data")
    assert r.status_code == 400 and "Unusable recording" in r.get_json()["error"]
    r = client.post("/api/verify", data={"file": (io.BytesIO(payload), name, mimetype)}, content_type="multipart/form-data")
    assert r.status_code == 400 and "Unreadable" in r.get_json()["error"]


def test_every_response_forbids_sniffing_and_framing(client, auth):
    auth.register()
    auth.login()
    for url in ("/", "/auth/login", "/account", "/generate", "/api/generations", "/api/openapi.json", "/verify",
                "/static/css/app.css", "/no-such-page"):
        r = client.get(url)
        assert r.headers["X-Content-Type-Options"] == "nosniff", url
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"], url


def test_challenges_are_rate_limited(client, auth):
    """Issuing challenges is cheap for a client and costly for the server: capped per account."""
    auth.register()
    auth.login()
    token = csrf_token(client, "/enroll/capture")
    codes = [client.post("/api/enroll/sessions", headers={"X-CSRFToken": token}).status_code for _ in range(25)]
    assert codes[0] == 201 and 429 in codes
    r = client.post("/api/enroll/sessions", headers={"X-CSRFToken": token})
    assert r.status_code == 429 and "minute" in r.get_json()["error"]


def test_a_method_not_allowed_names_the_allowed_ones(client, auth):
    """RFC 9110: a 405 carries Allow; the body is the app's JSON error for API paths."""
    auth.register()
    auth.login()
    r = client.get("/api/enroll/sessions", headers={"Accept": "application/json"})
    assert r.status_code == 405 and "POST" in r.headers["Allow"] and "GET" not in r.headers["Allow"]
    assert r.get_json()["error"]
    r = client.delete("/api/generations")
    assert r.status_code == 405 and {"GET", "POST"} <= {m.strip() for m in r.headers["Allow"].split(",")}
