"""Login manager, CSRF, security headers, roles, rate limits and audit helpers for views."""
from __future__ import annotations

from functools import wraps

from flask import Flask, abort, current_app, g, request
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from avatar.domain.ratelimit import RateLimiter
from avatar.store import audit
from avatar.store.models import User

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to continue."
login_manager.session_protection = "strong"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
       "form-action 'self'; frame-ancestors 'none'")


def init_security(app: Flask) -> None:
    csrf.init_app(app)
    login_manager.init_app(app)
    cfg = app.config["AVATAR"]
    app.extensions["avatar_login_limiter"] = RateLimiter(cfg.LOGIN_RATE_PER_MINUTE, 60)

    @login_manager.user_loader
    def _load(user_id: str):
        from avatar.web import services

        if not user_id.isdigit():
            return None
        user = services().db.session.get(User, int(user_id))
        return user if user is not None and user.is_active else None

    @app.before_request
    def _token_or_csrf():
        """`Authorization: Bearer avt_…` authenticates an API call by token (no cookie, so no CSRF:
        browsers cannot send this header cross-site); every other state-changing request needs the
        CSRF token."""
        from flask import jsonify

        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            if not request.path.startswith("/api/"):
                return jsonify({"error": "API tokens are accepted on /api/ only."}), 401
            from avatar.domain.tokens import authenticate
            from avatar.web import services

            user = authenticate(services().db.session, header[7:].strip())
            if user is None:
                return jsonify({"error": "Invalid or revoked API token."}), 401
            g._login_user = user  # this request only; the session is not touched
            g.token_auth = True
            return None
        if app.config["WTF_CSRF_ENABLED"]:
            csrf.protect(apply_exemptions=True)
        return None

    @login_manager.unauthorized_handler
    def _unauthorized():
        """Pages send anonymous visitors to the login form; the JSON API answers 401."""
        from flask import flash, jsonify, redirect, url_for

        if request.path.startswith("/api/"):
            return jsonify({"error": "Log in first (or send an API token)."}), 401
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
        return resp


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


def login_rate_limited() -> bool:
    """True when this client has sent too many login attempts in the last minute."""
    limiter: RateLimiter = current_app.extensions["avatar_login_limiter"]
    allowed = limiter.allow(client_ip())
    g.retry_after = None if allowed else limiter.retry_after(client_ip())
    return not allowed


def audit_event(action: str, *, target_type: str | None = None, target_id: int | None = None,
                details: dict | None = None, actor_id: int | None = None) -> None:
    """Commits the request's session together with an audit event for the current user and IP:
    both are saved or neither is."""
    from avatar.web import services

    svc = services()
    if actor_id is None and current_user.is_authenticated:
        actor_id = current_user.id
    audit.commit_with(svc.db.session, action, actor_id=actor_id, target_type=target_type, target_id=target_id,
                      ip=client_ip(), details=details)
