"""Sessions end on the server: a cookie copied before log-out, a password or role change, a
withdrawal or a deletion opens nothing afterwards. Sensitive account actions need a recent log-in;
API tokens carry scopes and never reach account pages."""
import re
import time

import pytest
import sqlalchemy as sa

from avatar.store.models import ApiToken, User
from tests.conftest import STRONG_PASSWORD, csrf_token

NEW_PASSWORD = "Another-strong-pass-77"


def _copy_cookie(client):
    return client.get_cookie("avatar_session").value


def _replay(app, cookie: str):
    """A second browser holding a copy of the cookie."""
    other = app.test_client()
    other.set_cookie("avatar_session", cookie)
    return other


def _age_session(client, minutes: float):
    with client.session_transaction() as sess:
        sess["auth_time"] = int(time.time() - minutes * 60)


def test_a_cookie_copied_before_logout_opens_nothing(app, client, auth):
    auth.register()
    auth.login()
    stolen = _replay(app, _copy_cookie(client))
    assert stolen.get("/account").status_code == 200
    assert auth.logout().status_code == 302
    assert stolen.get("/account").status_code == 302  # to the login page
    assert stolen.get("/account/export").status_code == 302
    r = stolen.post("/account/tokens", data={"name": "x", "scope": "generations"})
    assert r.status_code in (302, 400) and b"avt_" not in r.data
    assert stolen.get("/api/generations").status_code == 401


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(app, client, auth, services):
    auth.register()
    auth.login()
    other_device = _replay(app, _copy_cookie(client))
    token = csrf_token(client, "/auth/password")
    bad = client.post("/auth/password", data={"current": "Wrong-password-123", "password": NEW_PASSWORD,
                                              "confirm": NEW_PASSWORD, "csrf_token": token})
    assert bad.status_code == 400 and b"current password" in bad.data
    assert other_device.get("/account").status_code == 200  # a refused change ends nothing
    r = client.post("/auth/password", data={"current": STRONG_PASSWORD, "password": NEW_PASSWORD,
                                            "confirm": NEW_PASSWORD, "csrf_token": token})
    assert r.status_code == 303
    assert client.get("/account").status_code == 200
    assert other_device.get("/account").status_code == 302
    auth.logout()
    assert auth.login().status_code == 400  # the old password no longer works
    assert auth.login(password=NEW_PASSWORD).status_code == 302


def test_a_role_change_ends_that_users_sessions(app, client, auth):
    auth.create("boss@example.org", role="admin")
    uid = auth.create("rev@example.org", role="reviewer")
    rev = app.test_client()
    token = csrf_token(rev, "/auth/login")
    rev.post("/auth/login", data={"email": "rev@example.org", "password": STRONG_PASSWORD, "csrf_token": token})
    assert rev.get("/review").status_code == 200
    auth.login(email="boss@example.org")
    r = client.post(f"/admin/users/{uid}/role", data={"role": "user", "csrf_token": csrf_token(client, "/admin/users")})
    assert r.status_code == 303
    assert rev.get("/review").status_code == 302  # logged out, not merely forbidden


def test_withdrawal_and_deletion_end_other_sessions(app, client, auth, services):
    auth.register()
    auth.login()
    other_device = _replay(app, _copy_cookie(client))
    r = client.post("/account/revoke", data={"csrf_token": csrf_token(client, "/account")})
    assert r.status_code == 303
    assert client.get("/account").status_code == 200  # the person who withdrew stays logged in here
    assert other_device.get("/account").status_code == 302
    again = _replay(app, _copy_cookie(client))
    r = client.post("/account/delete", data={"csrf_token": csrf_token(client, "/account"), "password": STRONG_PASSWORD})
    assert r.status_code == 303
    assert again.get("/account").status_code == 302


def test_a_forged_session_version_is_refused(app, client, auth, services):
    auth.register()
    auth.login()
    with client.session_transaction() as sess:
        uid, _, version = sess["_user_id"].partition(".")
        sess["_user_id"] = f"{uid}.{int(version) + 1}"
    assert client.get("/account").status_code == 302


@pytest.mark.parametrize("method,url,data", [
    ("POST", "/account/tokens", {"name": "late token", "scope": "generations"}),
    ("GET", "/account/export", None),
])
def test_sensitive_actions_need_a_recent_log_in(client, auth, services, method, url, data):
    auth.register()
    auth.login()
    _age_session(client, 16)
    token = csrf_token(client, "/account")
    r = client.open(url, method=method, data={**(data or {}), "csrf_token": token} if data else None)
    assert r.status_code == 303 and "/auth/confirm" in r.headers["Location"]
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(sa.func.count(ApiToken.id))) == 0
    target = r.headers["Location"]
    wrong = client.post(target, data={"password": "Wrong-password-123", "csrf_token": csrf_token(client, target)})
    assert wrong.status_code == 401
    ok = client.post(target, data={"password": STRONG_PASSWORD, "csrf_token": csrf_token(client, target)})
    assert ok.status_code == 303
    r = client.open(url, method=method, data={**(data or {}), "csrf_token": token} if data else None)
    assert r.status_code == 200
    assert (b"avt_" in r.data) if method == "POST" else r.mimetype == "application/zip"


def _token(client, scopes):
    r = client.post("/account/tokens", data={"csrf_token": csrf_token(client, "/account/tokens"),
                                             "name": "script", "scope": list(scopes)})
    assert r.status_code == 200, r.data
    return {"Authorization": "Bearer " + re.search(r"(avt_[\w-]+)", r.get_data(as_text=True)).group(1)}


def test_tokens_carry_scopes_and_never_reach_account_actions(app, client, auth):
    auth.register()
    auth.login()
    bare = app.test_client()
    gen_only, enroll_only = _token(client, ["generations"]), _token(client, ["enroll"])
    assert bare.get("/api/generations", headers=gen_only).status_code == 200
    r = bare.get("/api/generations", headers=enroll_only)
    assert r.status_code == 403 and "generations" in r.get_json()["error"]
    assert bare.post("/api/enroll/sessions", headers=gen_only).status_code == 403
    assert bare.post("/api/enroll/sessions", headers=enroll_only).status_code == 201
    assert bare.get("/api/enroll/status", headers=enroll_only).status_code == 200
    for headers in (gen_only, enroll_only):  # tokens are for /api/ only
        assert bare.get("/account/export", headers=headers).status_code == 401
        assert bare.post("/account/tokens", headers=headers, data={"name": "x"}).status_code == 401
    r = client.post("/account/tokens", data={"csrf_token": csrf_token(client, "/account/tokens"), "name": "none"})
    assert r.status_code == 400 and b"Choose what the token may do" in r.data


def test_tokens_made_before_scopes_keep_the_generations_scope(services, auth):
    """The migration's default for existing rows is what the README promised them."""
    uid = auth.create("old@example.org")
    with services.db.session_scope() as s:
        s.execute(sa.insert(ApiToken).values(user_id=uid, name="old", token_sha256="0" * 64))
        assert s.scalar(sa.select(ApiToken.scopes)) == ["generations"]
        assert s.get(User, uid).session_version == 0


def test_registration_is_rate_limited_per_address(app, auth):
    app.extensions["avatar_limiters"]["register"].limit = 3
    for i in range(3):
        assert auth.register(email=f"p{i}@example.org").status_code == 302
    assert auth.register(email="p9@example.org").status_code == 429
