"""Register, log in, log out, change the password, confirm the password for sensitive actions."""
from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from avatar.domain import Conflict, DomainError, TooManyAttempts, accounts
from avatar.domain.passwords import verify_password
from avatar.web import services
from avatar.web.forms import ChangePasswordForm, LoginForm, PasswordConfirmForm, RegisterForm
from avatar.web.security import actor, attempt, audit_event, client_ip, login_rate_limited, rate_limited, renew_login

bp = Blueprint("auth", __name__, url_prefix="/auth")
REGISTERED = "Registration received. Log in with your email and password."


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
    """Creates an account: a valid, strong password, stored as an argon2id hash only. An email
    that is taken gets the same answer, in the same time, as a new one (no account enumeration);
    registrations are rate-limited per address."""
    form = RegisterForm()
    if request.method == "POST" and rate_limited("register"):
        flash("Too many registrations from your address; try again later.", "error")
        return render_template("auth/register.html", form=form), 429
    if form.validate_on_submit():
        db = services().db
        try:
            user = accounts.register(db.session, form.email.data, form.full_name.data, form.password.data)
        except Conflict:
            db.session.rollback()
            audit_event("account.register_taken", details={"email": (form.email.data or "")[:254]})
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return render_template("auth/register.html", form=form), exc.status
        else:
            audit_event("account.registered", actor_id=user.id, target_type="user", target_id=user.id)
        flash(REGISTERED, "info")
        return redirect(url_for("auth.login"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/register.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Logs a user in. Rate-limited per client; failures are throttled per account and address
    (domain.throttle). The session is renewed on login (no session fixation)."""
    form = LoginForm()
    if request.method == "POST":
        if login_rate_limited():
            return render_template("auth/login.html", form=form, error="Too many attempts; wait a minute."), 429
        if form.validate_on_submit():
            db = services().db
            cfg = current_app.config["AVATAR"]
            try:
                user = accounts.authenticate(db.session, form.email.data, form.password.data, client_ip(),
                                             cfg.LOGIN_MAX_FAILURES, cfg.LOGIN_LOCK_MINUTES)
            except DomainError as exc:
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
    """Logs out everywhere (POST with CSRF token, so no other site can log a user out): every
    session of the account ends on the server, a copied cookie included."""
    current_user.end_sessions()
    audit_event("auth.logout", target_type="user", target_id=current_user.id)
    logout_user()
    session.clear()
    return redirect(url_for("main.index"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    """A new password (the current one confirms it). Every other session of the account ends."""
    form = ChangePasswordForm()
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate_on_submit():
            _, refused = attempt(lambda: accounts.change_password(services().db.session, current_user, form.current.data,
                                                                  form.password.data, by=actor()))
            if refused:
                status = refused
            else:
                renew_login(current_user)
                flash("Password changed. Your other sessions were logged out.", "info")
                return redirect(url_for("account.index"), 303)
    return render_template("auth/password.html", form=form), status


@bp.route("/confirm", methods=["GET", "POST"])
@login_required
def confirm():
    """Sensitive actions need a log-in within 15 minutes: the password again renews it."""
    form = PasswordConfirmForm()
    status = 200
    if request.method == "POST":
        status = 400
        if login_rate_limited():
            flash("Too many attempts; wait a minute.", "error")
            status = 429
        elif form.validate_on_submit():
            if verify_password(current_user.password_hash, form.password.data):
                session["auth_time"] = int(time.time())
                audit_event("auth.reauthenticated", target_type="user", target_id=current_user.id)
                return redirect(safe_next(request.args.get("next")), 303)
            flash("That is not your password.", "error")
            status = 401
    return render_template("auth/confirm.html", form=form), status
