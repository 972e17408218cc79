"""The subject's delegations: let another account generate with one's likeness, and revoke it."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from avatar.domain import DomainError
from avatar.domain import delegations as rules
from avatar.domain.challenges import PURPOSES_LABELS
from avatar.domain.gate import MODALITY_SCOPES, ReauthRequired
from avatar.store.models import User
from avatar.web import services
from avatar.web.forms import EmptyForm
from avatar.web.security import actor, authenticated_at, commit, rate_limited

bp = Blueprint("delegations", __name__)


@bp.route("/account/delegations", methods=["GET", "POST"])
@login_required
def index():
    db = services().db
    status = 200
    if request.method == "POST":
        if not EmptyForm().validate_on_submit():
            abort(400, "Invalid form.")
        if rate_limited("delegate", f"user:{current_user.id}"):
            abort(429, "Too many delegation attempts; try again in an hour.")
        try:
            rules.create(db.session, current_user, request.form.get("email", ""), request.form.getlist("modality"),
                         request.form.getlist("purpose"), request.form.get("days", type=int) or 0, authenticated_at(),
                         by=actor())
        except ReauthRequired as exc:
            flash(str(exc), "error")
            return redirect(url_for("auth.confirm", next=url_for("delegations.index")), 303)
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            status = exc.status
        else:
            commit()  # the delegation and its audit event together
            flash("Delegation saved. You can revoke it here at any time.", "info")
            return redirect(url_for("delegations.index"), 303)
    given = rules.given_by(db.session, current_user.id)
    received = rules.received_by(db.session, current_user.id)
    names = {u.id: u for u in (db.session.get(User, i) for i in {d.delegate_id for d in given} | {d.subject_id for d in received})
             if u is not None}
    return render_template("account_delegations.html", given=given, received=received, names=names,
                           active=rules.active, form=EmptyForm(), modalities=list(MODALITY_SCOPES),
                           purposes=PURPOSES_LABELS), status


@bp.post("/account/delegations/<int:delegation_id>/revoke")
@login_required
def revoke(delegation_id: int):
    if not EmptyForm().validate_on_submit():
        abort(400, "Invalid form.")
    try:
        rules.revoke(services().db.session, current_user, delegation_id, by=actor())
    except DomainError as exc:
        abort(exc.status, str(exc))
    commit()
    flash("Delegation revoked; clips it started stop before delivery.", "info")
    return redirect(url_for("delegations.index"), 303)
