"""Register, log in, log out."""
from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from avatar.domain import DomainError, TooManyAttempts
from avatar.domain import accounts
from avatar.web import services
from avatar.web.forms import LoginForm, RegisterForm
from avatar.web.security import audit_event, login_rate_limited

bp = Blueprint("auth", __name__, url_prefix="/auth")


def safe_next(target: str | None) -> str:
    """Only same-site relative paths are followed after login (no open redirects)."""
    if not target:
        return url_for("main.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("main.index")
    return target


@bp.route("/register", methods=["GET", "POST"])
def register():
    """Creates an account. Validates that the email is not already taken and the password is
    strong enough; stores an argon2id hash only."""
    form = RegisterForm()
    if form.validate_on_submit():
        db = services().db
        try:
            user = accounts.register(db.session, form.email.data, form.full_name.data, form.password.data)
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return render_template("auth/register.html", form=form), exc.status
        audit_event("account.registered", actor_id=user.id, target_type="user", target_id=user.id)
        flash("Account created. Please log in.", "info")
        return redirect(url_for("auth.login"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/register.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Logs a user in. Rate-limited per client; the account locks after repeated failures.
    The session is renewed on login (no session fixation)."""
    form = LoginForm()
    if request.method == "POST":
        if login_rate_limited():
            return render_template("auth/login.html", form=form, error="Too many attempts; wait a minute."), 429
        if form.validate_on_submit():
            db = services().db
            cfg = current_app.config["AVATAR"]
            try:
                user = accounts.authenticate(db.session, form.email.data, form.password.data,
                                             cfg.LOGIN_MAX_FAILURES, cfg.LOGIN_LOCK_MINUTES)
            except DomainError as exc:
                db.session.commit()  # keep the failure count
                audit_event("auth.login_failed", details={"email": (form.email.data or "")[:254],
                                                         "locked": isinstance(exc, TooManyAttempts)})
                return render_template("auth/login.html", form=form, error=str(exc)), exc.status
            session.clear()
            login_user(user)
            session["auth_time"] = int(time.time())
            audit_event("auth.login", actor_id=user.id, target_type="user", target_id=user.id)
            return redirect(safe_next(request.args.get("next")))
        return render_template("auth/login.html", form=form), 400
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Logs out (POST with CSRF token, so no other site can log a user out)."""
    audit_event("auth.logout", target_type="user", target_id=current_user.id)
    logout_user()
    session.clear()
    return redirect(url_for("main.index"))
