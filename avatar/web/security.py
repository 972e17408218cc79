"""Login manager, CSRF, security headers, roles, rate limits and audit helpers for views."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime
from functools import wraps
from typing import Callable, TypeVar

from flask import Flask, abort, current_app, g, request
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from avatar.domain import DomainError
from avatar.domain.actor import Actor
from avatar.domain.ratelimit import RateLimiter
from avatar.store import audit
from avatar.store.models import User

T = TypeVar("T")

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to continue."
login_manager.session_protection = "strong"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
       "form-action 'self'; frame-ancestors 'none'")


UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def init_security(app: Flask) -> None:
    csrf.init_app(app)
    login_manager.init_app(app)
    cfg = app.config["AVATAR"]
    app.extensions["avatar_limiters"] = {  # rate_limited(kind): per address unless a key is given
        "login": RateLimiter(cfg.LOGIN_RATE_PER_MINUTE, 60),
        "register": RateLimiter(cfg.REGISTER_RATE_PER_HOUR, 3600),
        "delegate": RateLimiter(10, 3600),  # delegation attempts per account (each may name any email)
        "verify": RateLimiter(cfg.VERIFY_RATE_PER_MINUTE, 60),
        "webhook": RateLimiter(20, 3600),  # webhook registrations and secret rotations per account
    }
    app.extensions["avatar_work_slots"] = {"verify": threading.BoundedSemaphore(cfg.VERIFY_CONCURRENCY)}

    @login_manager.user_loader
    def _load(session_id: str):
        """The session's user, if the account is active and the session was issued under its
        current session version (User.get_id): log-out, a password or role change, revocation
        and deletion raise the version and so end every session issued before."""
        from avatar.web import services

        user_id, _, version = session_id.partition(".")
        if not user_id.isdigit() or not version.isdigit() or len(user_id) > 18:
            return None
        user = services().db.session.get(User, int(user_id))
        if user is None or not user.is_active or user.session_version != int(version):
            return None
        return user

    @app.before_request
    def _token_or_csrf():
        """`Authorization: Bearer avt_…` authenticates an API call by token (no cookie, so no CSRF:
        browsers cannot send this header cross-site); every other state-changing request needs the
        CSRF token."""
        from flask import jsonify

        if request.routing_exception is not None:
            return None  # no such route or method: the 404 or 405 (with Allow) says so, token or not
        if request.method in UNSAFE_METHODS and (None in request.form or None in request.files):
            abort(400, "Malformed form data: a field has no readable name.")  # werkzeug gives such a name as None
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            if not request.path.startswith("/api/"):
                return jsonify({"error": "API tokens are accepted on /api/ only.", "status": 401}), 401
            from avatar.domain.tokens import authenticate
            from avatar.web import services

            found = authenticate(services().db.session, header[7:].strip())
            if found is None:
                return jsonify({"error": "Invalid or revoked API token.", "status": 401}), 401
            user, scopes, token_id = found
            needed = scope_of(request.endpoint)
            if needed is None or needed not in scopes:
                what = f"the '{needed}' scope" if needed else "a browser session, not a token"
                return jsonify({"error": f"This API token may not do this: it needs {what}.", "status": 403}), 403
            g._login_user = user  # this request only; the session is not touched
            g.token_auth, g.token_id = True, token_id
            return None
        if request.path.startswith("/api/") and not current_user.is_authenticated:
            return None  # no session to ride on: the route's own 401 (log in) answers, not a CSRF error
        if app.config["WTF_CSRF_ENABLED"]:
            csrf.protect(apply_exemptions=True)
        return None

    @login_manager.unauthorized_handler
    def _unauthorized():
        """Pages send anonymous visitors to the login form; the JSON API answers 401."""
        from flask import flash, jsonify, redirect, url_for

        if request.path.startswith("/api/"):
            return jsonify({"error": "Log in first (or send an API token).", "status": 401}), 401
        flash(login_manager.login_message, "info")
        return redirect(url_for(login_manager.login_view, next=request.full_path.rstrip("?")))

    @app.after_request
    def _headers(resp):
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers["Permissions-Policy"] = "camera=(self), microphone=(self), geolocation=()"
        resp.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if cfg.SECURE_COOKIES:
            resp.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        if current_user.is_authenticated:
            resp.headers["Cache-Control"] = "no-store"
        if g.get("rate_limit"):
            limit, remaining, reset = g.rate_limit
            resp.headers["RateLimit-Limit"], resp.headers["RateLimit-Remaining"] = str(limit), str(remaining)
            resp.headers["RateLimit-Reset"] = str(reset)
        return resp


def scope_of(endpoint: str | None) -> str | None:
    """The token scope an API endpoint needs (domain.tokens.SCOPES); None: tokens may not call it."""
    from avatar.domain.tokens import ENDPOINT_SCOPES

    return ENDPOINT_SCOPES.get(endpoint or "")


def renew_login(user: User) -> None:
    """After the account's session version was raised on purpose by this request (a password
    change, a withdrawal), keeps this one session: it is re-issued under the new version."""
    from flask import session
    from flask_login import login_user

    auth_time = session.get("auth_time")
    login_user(getattr(user, "_get_current_object", lambda: user)())  # never the current_user proxy itself
    if auth_time:
        session["auth_time"] = auth_time


def fresh_login_required(view):
    """The view needs a log-in (or the password confirmed) within RECENT_AUTH; otherwise the user
    confirms their password first (/auth/confirm), or the API answers 401."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        import time

        from flask import jsonify, session

        from avatar.domain.gate import RECENT_AUTH

        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()
        t = session.get("auth_time")
        if not g.get("token_auth") and (not t or time.time() - t > RECENT_AUTH.total_seconds()):
            message = "Confirm your password first: this needs a log-in within the last 15 minutes."
            if request.path.startswith("/api/"):
                return jsonify({"error": message, "status": 401}), 401
            return to_confirm()
        return view(*args, **kwargs)

    return wrapper


def to_confirm():
    """A redirect to /auth/confirm that comes back to this page afterwards."""
    from flask import redirect, url_for

    target = request.full_path.rstrip("?") if request.method == "GET" else request.referrer or request.path
    return redirect(url_for("auth.confirm", next=_local_path(target)), 303)


def attempt(action: Callable[[], T]) -> tuple[T | None, int | None]:
    """Runs a page's domain action and commits it with the audit event it appended: (its result,
    None). When a rule refuses it, rolls back, flashes the reason and returns (None, the refusal's
    status) for the page to show again. A refusal that needs a fresh log-in (ReauthRequired) goes
    to the app's handler, which sends the user to confirm their password and back."""
    from flask import flash

    from avatar.domain.gate import ReauthRequired
    from avatar.web import services

    session = services().db.session
    try:
        result = action()
    except ReauthRequired:
        session.rollback()
        raise
    except DomainError as exc:
        session.rollback()
        flash(str(exc), "error")
        return None, exc.status
    commit()
    return result, None


def _local_path(url: str | None) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url or "/")
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def rate_limited(kind: str, key: str | None = None) -> bool:
    """True when this address (or key) went over the configured rate for `kind`."""
    limiter: RateLimiter = current_app.extensions["avatar_limiters"][kind]
    key = key or client_ip()
    allowed = limiter.allow(key)
    g.retry_after = None if allowed else limiter.retry_after(key)
    g.rate_limit = limiter.state(key)  # told in RateLimit-* header fields (IETF draft) of the answer
    return not allowed


def client_ip() -> str:
    return request.remote_addr or "unknown"


def role_required(*roles: str):
    """The view needs a logged-in user with one of roles; others get 403 (anonymous: login)."""

    def deco(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return deco


@contextmanager
def anonymous_work_slot(kind: str):
    """Costly work that anyone may ask for (verifying a file): at most the configured number per
    minute from one address (429 with Retry-After) and at once in this process (503: busy)."""
    if rate_limited(kind):
        abort(429, "Too many checks from your address; wait a minute.")
    slots = current_app.extensions["avatar_work_slots"][kind]
    if not slots.acquire(timeout=5):
        g.retry_after = 10
        abort(503, "The service is busy checking other files; try again in a few seconds.")
    try:
        yield
    finally:
        slots.release()


def login_rate_limited() -> bool:
    """True when this client has sent too many login attempts in the last minute."""
    return rate_limited("login")


def authenticated_at() -> datetime | None:
    """When this browser session last proved its password (log-in or /auth/confirm), UTC naive;
    None when it never did."""
    from datetime import timezone

    from flask import session

    t = session.get("auth_time")
    return datetime.fromtimestamp(t, timezone.utc).replace(tzinfo=None) if t else None


def actor() -> Actor:
    """Who makes this request, for the domain action's audit event: the signed-in account (or the
    API token's), the client address, and whether it came through the web or with a token."""
    return Actor("api" if g.get("token_auth") else "web",
                 user_id=current_user.id if current_user.is_authenticated else None, ip=client_ip(),
                 token_id=g.get("token_id"))


def commit() -> None:
    """The request's one commit: the domain action and the audit event it appended, together."""
    from avatar.web import services

    session = services().db.session
    try:
        session.commit()
    except BaseException:
        session.rollback()
        raise


def audit_event(action: str, *, target_type: str | None = None, target_id: int | None = None,
                details: dict | None = None, actor_id: int | None = None) -> None:
    """Commits the request's session together with an audit event for the current user and IP:
    both are saved or neither is. Only for what no domain action does: signing up and in and out,
    and audited reads (evidence viewed, data exported, an output downloaded). A domain action
    appends its own event (it takes actor()); its route then calls commit()."""
    from avatar.web import services

    svc = services()
    if actor_id is None and current_user.is_authenticated:
        actor_id = current_user.id
    audit.commit_with(svc.db.session, action, actor_id=actor_id, target_type=target_type, target_id=target_id,
                      ip=client_ip(), details=details)
