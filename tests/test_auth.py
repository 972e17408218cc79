"""Accounts and the web's security rules: registration, login, lockout, CSRF, roles, limits."""
import subprocess
import sys

import pytest
import sqlalchemy as sa

from avatar.store.models import AuditEvent, Job, User
from tests.conftest import STRONG_PASSWORD, csrf_token


def _actions(services):
    with services.db.session_scope() as s:
        return s.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)).all()


def test_register_login_logout(client, auth, services):
    resp = auth.register()
    assert resp.status_code == 302
    with services.db.session_scope() as s:
        user = s.scalar(sa.select(User).where(User.email == "ada@example.org"))
        assert user.password_hash.startswith("$argon2id$") and STRONG_PASSWORD not in user.password_hash
        assert user.role == "user"
    assert auth.login().status_code == 302
    assert "ada@example.org" in client.get("/account").get_data(as_text=True)
    assert auth.logout().status_code == 302
    assert client.get("/account").status_code == 302  # back to login
    assert _actions(services) == ["account.registered", "auth.login", "auth.logout"]


def test_register_existing_email_gets_the_same_answer_and_changes_nothing(client, auth, services):
    first = auth.register()
    again = auth.register(email="ADA@example.org ", password="Another-strong-pass-77")
    assert first.status_code == again.status_code == 302
    assert first.headers["Location"] == again.headers["Location"]
    assert b"Registration received" in client.get(again.headers["Location"]).data
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(sa.func.count(User.id))) == 1
    assert auth.login().status_code == 302  # the first password still holds
    assert _actions(services)[:2] == ["account.registered", "account.register_taken"]


@pytest.mark.parametrize("password,message", [
    ("short1!", b"at least 12"),
    ("aaaaaaaaaaaaaaaa", b"too common"),
    ("alllowercaseletters", b"two kinds"),
    ("ada.lovelace-2024!", b"email"),
    ("Lovelace-Analytical-1843", b"your name"),  # a part of the name given at registration
    ("Engine-2024!-LOVELACE", b"your name"),
])
def test_weak_passwords_are_refused(auth, services, password, message):
    resp = auth.register(email="ada.lovelace@example.org", password=password)
    assert resp.status_code == 400 and message in resp.data
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(sa.func.count(User.id))) == 0


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "<script>@x.org"])
def test_bad_email_is_refused(auth, email):
    assert auth.register(email=email).status_code == 400


def test_wrong_password_and_unknown_user_get_the_same_answer(auth):
    auth.register()
    a = auth.login(password="Wrong-password-123")
    b = auth.login(email="nobody@example.org")
    assert a.status_code == b.status_code == 400
    assert b"Wrong email or password" in a.data and b"Wrong email or password" in b.data


def _login_from(client, address: str, email: str, password: str = STRONG_PASSWORD):
    token = csrf_token(client, "/auth/login")
    return client.post("/auth/login", data={"email": email, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def test_lockout_is_per_account_and_address_and_tells_nothing(client, auth, services):
    auth.register()
    for email in ("ada@example.org", "nobody@example.org"):  # a real and an unknown account alike
        answers = [_login_from(client, "10.0.0.66", email, "Wrong-password-123") for _ in range(5)]
        assert [r.status_code for r in answers] == [400] * 4 + [429]
        locked = _login_from(client, "10.0.0.66", email)  # even the right password, from there
        assert locked.status_code == 429 and b"Try again in 15 minutes" in locked.data
    assert "auth.login_failed" in _actions(services)
    # the owner, from their own address, is not locked out by someone else's failures
    assert _login_from(client, "10.0.0.7", "ada@example.org").status_code == 302


def test_a_locked_answer_costs_a_password_hash_like_any_other(client, auth, monkeypatch):
    """Same time either way: the locked path verifies a password too (counted, not timed, so a
    busy machine cannot make this flaky)."""
    from avatar.domain import accounts

    auth.register()
    for _ in range(5):
        _login_from(client, "10.0.0.66", "ada@example.org", "Wrong-password-123")
    calls = []
    real = accounts.verify_password
    monkeypatch.setattr(accounts, "verify_password", lambda h, p: calls.append(h) or real(h, p))
    assert _login_from(client, "10.0.0.66", "ada@example.org").status_code == 429
    assert _login_from(client, "10.0.0.67", "nobody@example.org", "Wrong-password-123").status_code == 400
    assert len(calls) == 2 and calls[0] is None and calls[1] is None  # the dummy hash both times


def test_an_account_cannot_be_locked_from_many_addresses_for_long(client, auth, services):
    """Many addresses together slow guessing on one account to one try a minute; they cannot lock
    the owner out for longer than that."""
    from datetime import timedelta

    from avatar.domain import throttle
    from avatar.store.models import LoginThrottle

    auth.register()
    for i in range(throttle.ACCOUNT_LIMIT):
        _login_from(client, f"10.1.{i // 4}.{i % 4}", "ada@example.org", "Wrong-password-123")
    assert _login_from(client, "10.9.9.9", "ada@example.org").status_code == 429  # backing off now
    with services.db.session_scope() as s:
        locks = [r.locked_until for r in s.scalars(sa.select(LoginThrottle)) if r.locked_until]
        assert locks and max(locks) - min(locks) <= timedelta(minutes=1)
        for row in s.scalars(sa.select(LoginThrottle)):
            row.locked_until = None  # the minute has passed
    assert _login_from(client, "10.9.9.9", "ada@example.org").status_code == 302


def test_login_rate_limit_per_client(app, auth):
    app.extensions["avatar_limiters"]["login"].limit = 3
    for _ in range(3):
        auth.login(email="nobody@example.org")
    assert auth.login(email="nobody@example.org").status_code == 429


def test_forged_or_missing_csrf_token_is_refused(client, services):
    csrf_token(client, "/auth/register")
    data = {"email": "eve@example.org", "full_name": "Eve", "password": STRONG_PASSWORD, "confirm": STRONG_PASSWORD}
    for token in (None, "forged-token"):
        resp = client.post("/auth/register", data={**data, **({"csrf_token": token} if token else {})})
        assert resp.status_code == 400 and b"Security token" in resp.data
    with services.db.session_scope() as s:
        assert s.scalar(sa.select(sa.func.count(User.id))) == 0


def test_oversized_body_gets_a_clear_413(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    resp = client.post("/auth/login", data={"email": "x" * 5000})
    assert resp.status_code == 413 and b"too large" in resp.data
    api = client.post("/api/jobs/1/cancel", data=b"x" * 5000, headers={"Accept": "application/json"})
    assert api.status_code == 413 and "limit" in api.get_json()["error"]


def test_roles_on_admin_routes(client, auth):
    assert client.get("/admin/users").status_code == 302  # anonymous: to login
    auth.create("user@example.org")
    auth.create("rev@example.org", role="reviewer")
    auth.create("boss@example.org", role="admin")
    for email, status in (("user@example.org", 403), ("rev@example.org", 403), ("boss@example.org", 200)):
        auth.login(email=email)
        assert client.get("/admin/users").status_code == status
        assert client.get("/admin/audit").status_code == status
        auth.logout()


def test_admin_changes_a_role_but_not_their_own(client, auth, services):
    uid = auth.create("user@example.org")
    boss = auth.create("boss@example.org", role="admin")
    auth.login(email="boss@example.org")
    token = csrf_token(client, "/admin/users")
    assert client.post(f"/admin/users/{uid}/role", data={"role": "reviewer", "csrf_token": token}).status_code == 303
    client.post(f"/admin/users/{boss}/role", data={"role": "user", "csrf_token": token})
    with services.db.session_scope() as s:
        assert s.get(User, uid).role == "reviewer" and s.get(User, boss).role == "admin"
    assert client.post("/admin/users/99999/role", data={"role": "user", "csrf_token": token}).status_code == 404


def test_another_users_job_is_404(client, auth, services):
    owner = auth.create("owner@example.org")
    auth.create("other@example.org")
    with services.db.session_scope() as s:
        job = Job(name="audit.verify", payload={}, owner_id=owner)
        s.add(job)
        s.flush()
        job_id = job.id
    auth.login(email="other@example.org")
    assert client.get(f"/api/jobs/{job_id}").status_code == 404
    assert client.get("/api/jobs/999999").status_code == 404
    auth.logout()
    auth.login(email="owner@example.org")
    resp = client.get(f"/api/jobs/{job_id}")
    assert resp.status_code == 200 and resp.get_json()["state"] == "queued"


def test_security_headers_and_cookie_flags(client, auth):
    resp = client.get("/")
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    auth.register()
    resp = auth.login()
    cookie = resp.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie


def test_session_is_renewed_on_login(client, auth):
    auth.register()
    client.get("/auth/login")
    before = client.get_cookie("avatar_session").value
    auth.login()
    assert client.get_cookie("avatar_session").value != before


@pytest.mark.parametrize("target", ["https://evil.example/x", "//evil.example", "/\\evil.example", "javascript:alert(1)"])
def test_no_open_redirect_after_login(auth, target):
    auth.register()
    resp = auth.login(next_url=target)
    assert resp.status_code == 302 and resp.headers["Location"] == "/"


def test_same_site_next_is_followed(auth):
    auth.register()
    assert auth.login(next_url="/account").headers["Location"] == "/account"


def test_names_are_escaped(client, auth):
    refused = auth.register(name="Bob <script>alert(1)</script>")
    assert refused.status_code == 400 and b"<script>alert" not in refused.data
    resp = auth.register(email="bob@example.org", name="Bob \"quote' & amp")
    assert resp.status_code == 302
    auth.login(email="bob@example.org")
    html = client.get("/account").get_data(as_text=True)
    assert "Bob &#34;quote&#39; &amp; amp" in html


def test_production_passwords_cost_what_owasp_asks_and_any_cost_verifies():
    """The suite hashes cheaply (conftest); the app does not: argon2id t=3, 64 MiB, p=4. A hash made
    at either cost verifies, since argon2 reads the cost from the hash."""
    from avatar.domain import passwords

    p = passwords.PRODUCTION
    assert (p.type.name, p.time_cost, p.memory_cost, p.parallelism) == ("ID", 3, 65536, 4)
    strong = p.hash("Correct-horse-42-battery")
    assert strong.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.verify_password(strong, "Correct-horse-42-battery")
    assert not passwords.verify_password(strong, "Correct-horse-42-batterY")
    assert passwords.hash_password("x").startswith("$argon2id$v=19$m=1024,t=1,p=1$")  # the suite's
    code = "import avatar.domain.passwords as p; p.use_cheap_hashing_for_tests()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "test suite only" in out.stderr  # refused outside pytest
