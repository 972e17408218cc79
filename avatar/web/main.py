"""Home and account pages."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template
from flask_login import current_user, login_required

from avatar.store.models import Job
from avatar.web import services

bp = Blueprint("main", __name__)


@bp.route("/")
def index():
    return render_template("index.html")


@bp.route("/account")
@login_required
def account():
    """The signed-in user's own data: profile and their recent jobs."""
    jobs = services().db.session.scalars(
        sa.select(Job).where(Job.owner_id == current_user.id).order_by(Job.id.desc()).limit(20)).all()
    from avatar.domain.enrollment import current_enrollment
    from avatar.web.forms import EmptyForm, PasswordConfirmForm

    enr = current_enrollment(services().db.session, current_user.id)
    return render_template("account.html", jobs=jobs, enrollment=enr, form=EmptyForm(), delete_form=PasswordConfirmForm())
