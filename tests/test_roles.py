"""Role checks on every route, table-driven: anonymous, user, reviewer and admin. A route missing
from the table fails the test, so every new route gets a decision here."""
import re

import pytest

from tests.conftest import STRONG_PASSWORD

LEVELS = ["anonymous", "user", "reviewer", "admin"]
ACCESS = {  # endpoint -> the least role that may use it
    "static": "anonymous", "main.index": "anonymous", "health.healthz": "anonymous", "health.readyz": "anonymous",
    "auth.login": "anonymous", "auth.register": "anonymous", "auth.logout": "user",
    "auth.change_password": "user", "auth.confirm": "user",
    "account.index": "user", "account.delete": "user", "account.export": "user", "account.withdraw": "user",
    "enroll.overview": "user", "enroll.capture": "user", "enroll.consent": "user", "enroll.status": "user",
    "enroll.new_session": "user", "enroll.upload_recording": "user", "enroll.upload_paragraph": "user", "enroll.upload_reading": "user",
    "api.job_status": "user", "api.job_cancel": "user",
    "generate.index": "user", "generate.download": "user", "generate.manifest": "user",
    "generate.verify_page": "anonymous", "generate.verify_api": "anonymous",
    "api_generations.list_generations": "user", "api_generations.create_generation": "user",
    "api_generations.get_generation": "user", "api_generations.download": "user", "api_generations.manifest": "user",
    "api_generations.openapi": "anonymous", "api_generations.docs": "anonymous", "account.tokens": "user", "account.revoke_token": "user",
    "account.delegations": "user", "account.revoke_delegation": "user",
    "webhooks.page": "user", "webhooks.rotate": "user", "webhooks.delete": "user", "webhooks.api_list": "user",
    "webhooks.api_create": "user", "webhooks.api_get": "user", "webhooks.api_delete": "user", "webhooks.api_rotate": "user",
    "review.queue": "reviewer", "review.decide": "reviewer", "review.guard_match": "reviewer",
    "review.statement": "reviewer", "review.timeline": "reviewer", "review.footage": "reviewer",
    "admin.users": "admin", "admin.set_role": "admin", "admin.audit_log": "admin", "admin.protected": "admin",
    "admin.assisted": "admin", "admin.end_assisted": "admin", "review.revoke_user": "admin",
}
ARGS = {"endpoint_id": 1, "token_id": 1, "delegation_id": 1, "generation_id": 1, "user_id": 1, "enrollment_id": 1, "job_id": 1, "nonce": "unknown-nonce", "filename": "css/app.css"}


def _cases(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: str(ARGS[m.group(1)]), rule.rule)
            yield rule.endpoint, method, url


def _client_as(app, auth_factory, level):
    client = app.test_client()
    if level != "anonymous":
        email = f"{level}@example.org"
        auth_factory(client).create(email, role=level)
        token = _token(client, "/auth/login")
        r = client.post("/auth/login", data={"email": email, "password": STRONG_PASSWORD, "csrf_token": token})
        assert r.status_code == 302
    return client


def _token(client, path):
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


@pytest.fixture
def clients(app, services):
    from tests.conftest import AuthActions

    return {level: _client_as(app, lambda c: AuthActions(c, services), level) for level in LEVELS}


def test_every_route_is_in_the_table(app):
    assert {endpoint for endpoint, _, _ in _cases(app)} == set(ACCESS)


@pytest.mark.parametrize("level", LEVELS)
def test_role_checks_on_every_route(app, clients, level):
    client = clients[level]
    token = _token(client, "/account" if level != "anonymous" else "/auth/login")
    rank = LEVELS.index(level)
    for endpoint, method, url in _cases(app):
        if endpoint == "auth.logout":
            continue  # would end this client's session; checked below
        r = client.open(url, method=method, headers={"X-CSRFToken": token}, data={})
        to_login = r.status_code == 302 and "/auth/login" in r.headers.get("Location", "")
        allowed = LEVELS.index(ACCESS[endpoint]) <= rank
        what = f"{level} {method} {url} -> {r.status_code}"
        if allowed and endpoint == "generate.index" and method == "POST" and r.status_code == 403:
            assert b"flash error" in r.data, what  # the consent gate refused the empty request: not a role check
        elif allowed and endpoint == "api_generations.create_generation" and r.status_code == 403:
            assert "modality" in r.get_json()["error"], what  # the gate again
        elif allowed and endpoint.startswith("review.") and r.status_code == 403 and level != "user":
            assert b"your own enrollment" in r.data, what  # enrollment 1 is this reviewer's own (made above)
        elif allowed:
            assert r.status_code not in (401, 403) and not to_login and r.status_code < 500, what
        elif level == "anonymous":
            assert (r.status_code == 401 if url.startswith("/api/") else to_login), what
        else:
            assert r.status_code == 403, what
    r = client.post("/auth/logout", headers={"X-CSRFToken": token})
    assert (r.status_code == 302 and "/auth/login" in r.headers["Location"]) if level == "anonymous" else r.status_code in (302, 303)
