"""The user's API tokens: create (shown once), list, revoke."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from avatar.domain import DomainError
from avatar.domain import tokens as rules
from avatar.store.models import ApiToken
from avatar.web import services
from avatar.web.forms import EmptyForm
from avatar.web.security import actor, commit, fresh_login_required

bp = Blueprint("tokens", __name__)


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def index():
    """The user's tokens; making one needs a log-in within 15 minutes (a token outlives it)."""
    if request.method == "POST":
        return _create()
    return _page(None, 200)


@fresh_login_required
def _create():
    db = services().db
    created, status = None, 200
    try:
        _, created = rules.create(db.session, current_user, request.form.get("name", ""),
                                  request.form.getlist("scope"), by=actor())
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        status = exc.status
    else:
        commit()
    return _page(created, status)


def _page(created: str | None, status: int):
    db = services().db
    rows = db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == current_user.id)
                              .order_by(ApiToken.id.desc())).all()
    return render_template("account_tokens.html", rows=rows, created=created, form=EmptyForm(),
                           scopes=rules.SCOPES), status


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke(token_id: int):
    if not EmptyForm().validate_on_submit():
        abort(400, "Invalid form.")
    try:
        row = rules.revoke(services().db.session, current_user, token_id, by=actor())
    except DomainError as exc:
        abort(exc.status, str(exc))
    commit()
    flash(f"Token “{row.name}” revoked.", "info")
    return redirect(url_for("tokens.index"), 303)
