"""The signed-in person's own area: the account page, API tokens, delegations of their likeness,
withdrawing consent, exporting their data and deleting the account."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from avatar.domain import delegations as delegation_rules
from avatar.domain import review as review_rules
from avatar.domain import tokens as token_rules
from avatar.domain.challenges import PURPOSES_LABELS
from avatar.domain.gate import MODALITY_SCOPES
from avatar.store.models import ApiToken, Job, User
from avatar.web import services
from avatar.web.forms import EmptyForm, PasswordConfirmForm
from avatar.web.security import (
    actor,
    attempt,
    audit_event,
    authenticated_at,
    commit,
    fresh_login_required,
    rate_limited,
    renew_login,
)

bp = Blueprint("account", __name__)


@bp.route("/account")
@login_required
def index():
    """The signed-in user's own data: profile and their recent jobs."""
    from avatar.domain.enrollment import current_enrollment

    jobs = services().db.session.scalars(
        sa.select(Job).where(Job.owner_id == current_user.id).order_by(Job.id.desc()).limit(20)).all()
    enr = current_enrollment(services().db.session, current_user.id)
    return render_template("account.html", jobs=jobs, enrollment=enr, form=EmptyForm(), delete_form=PasswordConfirmForm())


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def tokens():
    """The user's tokens; making one needs a log-in within 15 minutes (a token outlives it)."""
    if request.method == "POST":
        return _create_token()
    return _tokens_page(None, 200)


@fresh_login_required
def _create_token():
    made, refused = attempt(lambda: token_rules.create(services().db.session, current_user, request.form.get("name", ""),
                                                       request.form.getlist("scope"), by=actor()))
    return _tokens_page(made[1] if made else None, refused or 200)


def _tokens_page(created: str | None, status: int):
    db = services().db
    rows = db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == current_user.id)
                              .order_by(ApiToken.id.desc())).all()
    return render_template("account_tokens.html", rows=rows, created=created, form=EmptyForm(),
                           scopes=token_rules.SCOPES), status


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    if not EmptyForm().validate_on_submit():
        abort(400, "Invalid form.")
    row = token_rules.revoke(services().db.session, current_user, token_id, by=actor())  # refused: the error page
    commit()
    flash(f"Token “{row.name}” revoked.", "info")
    return redirect(url_for("account.tokens"), 303)


@bp.route("/account/delegations", methods=["GET", "POST"])
@login_required
def delegations():
    db = services().db
    status = 200
    if request.method == "POST":
        if not EmptyForm().validate_on_submit():
            abort(400, "Invalid form.")
        if rate_limited("delegate", f"user:{current_user.id}"):
            abort(429, "Too many delegation attempts; try again in an hour.")
        _, refused = attempt(lambda: delegation_rules.create(
            db.session, current_user, request.form.get("email", ""), request.form.getlist("modality"),
            request.form.getlist("purpose"), request.form.get("days", type=int) or 0, authenticated_at(), by=actor()))
        if not refused:
            flash("Delegation saved. You can revoke it here at any time.", "info")
            return redirect(url_for("account.delegations"), 303)
        status = refused
    given = delegation_rules.given_by(db.session, current_user.id)
    received = delegation_rules.received_by(db.session, current_user.id)
    names = {u.id: u for u in (db.session.get(User, i) for i in {d.delegate_id for d in given} | {d.subject_id for d in received})
             if u is not None}
    return render_template("account_delegations.html", given=given, received=received, names=names,
                           active=delegation_rules.active, form=EmptyForm(), modalities=list(MODALITY_SCOPES),
                           purposes=PURPOSES_LABELS), status


@bp.post("/account/delegations/<int:delegation_id>/revoke")
@login_required
def revoke_delegation(delegation_id: int):
    if not EmptyForm().validate_on_submit():
        abort(400, "Invalid form.")
    delegation_rules.revoke(services().db.session, current_user, delegation_id, by=actor())  # refused: the error page
    commit()
    flash("Delegation revoked; clips it started stop before delivery.", "info")
    return redirect(url_for("account.delegations"), 303)


@bp.post("/account/revoke")
@login_required
def withdraw():
    """One click: withdraws consent, stops and deletes generation, destroys the data key."""
    if not EmptyForm().validate_on_submit():
        abort(400)
    svc = services()
    review_rules.revoke(svc.db.session, svc.media, current_user, current_user.id, "withdrawn by the subject", by=actor())
    commit()
    renew_login(current_user)  # every other session ended; this one goes on
    flash("Your consent is withdrawn. Your face and voice data can no longer be used or read. "
          "Your other sessions were logged out.", "info")
    return redirect(url_for("account.index"), 303)


@bp.get("/account/export")
@fresh_login_required
def export():
    """Everything stored about the signed-in person: data.json and their media, decrypted."""
    from avatar.domain.account_data import export_zip

    svc = services()
    data = export_zip(svc.db.session, svc.media, current_user)
    audit_event("account.exported", target_type="user", target_id=current_user.id, details={"bytes": len(data)})
    return Response(data, mimetype="application/zip", headers={
        "Content-Disposition": "attachment; filename=avatar-my-data.zip", "Cache-Control": "no-store"})


@bp.post("/account/delete")
@login_required
def delete():
    """Deletes the account (password confirmation): revokes and destroys the likeness first."""
    from flask import session as http_session
    from flask_login import logout_user

    from avatar.domain.account_data import delete_account

    form = PasswordConfirmForm()
    if not form.validate_on_submit():
        abort(400, "Confirm with your password.")
    svc = services()
    _, refused = attempt(lambda: delete_account(svc.db.session, svc.media, current_user, form.password.data, by=actor()))
    if refused:
        return redirect(url_for("account.index"), 303)
    logout_user()
    http_session.clear()
    flash("Your account and your face and voice data are deleted.", "info")
    return redirect(url_for("main.index"), 303)
