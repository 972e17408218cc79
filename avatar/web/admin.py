"""Admin pages: users and roles, audit chain check."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user

from avatar.domain import accounts
from avatar.store import audit
from avatar.store.models import AuditEvent, User
from avatar.web import services
from avatar.web.forms import AssistedForm, EmptyForm, RoleForm
from avatar.web.security import actor, attempt, audit_event, commit, role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/users")
@role_required("admin")
def users():
    rows = services().db.session.scalars(sa.select(User).order_by(User.id)).all()
    return render_template("admin/users.html", users=rows, form=RoleForm())


@bp.route("/users/<int:user_id>/role", methods=["POST"])
@role_required("admin")
def set_role(user_id: int):
    """Changes a user's role. An admin cannot change their own role (no lock-out by accident)."""
    db = services().db
    user = db.session.get(User, user_id) or abort(404)
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400, "Invalid role.")
    if user.id == current_user.id:
        flash("You cannot change your own role.", "error")
        return redirect(url_for("admin.users")), 303
    accounts.set_role(db.session, user, form.role.data, by=actor())  # refused: the error page
    commit()
    flash(f"{user.email} is now {user.role}.", "info")
    return redirect(url_for("admin.users"), 303)


@bp.route("/assisted", methods=["GET", "POST"])
@role_required("admin")
def assisted():
    """Starts an in-person enrollment: the admin attests to the ID check (type and last 4 only),
    then records the person with the ordinary capture page on this device."""
    from avatar.domain.enrollment import DOCUMENT_TYPES, start_assisted
    from avatar.web.enroll import ASSIST_KEY

    db = services().db
    form = AssistedForm()
    form.document_type.choices = list(DOCUMENT_TYPES.items())
    status = 200
    if request.method == "POST":
        status = 400
        if form.validate_on_submit():
            person = db.session.scalar(sa.select(User).where(User.email == accounts.normalize_email(form.email.data)))
            enr, refused = attempt(lambda: start_assisted(db.session, current_user, person, form.document_type.data,
                                                          form.last4.data, by=actor()))
            if refused:
                status = refused
            else:
                session[ASSIST_KEY] = enr.id
                flash(f"Assisted enrollment of {person.full_name}: let them follow the prompts on this device.", "info")
                return redirect(url_for("enroll.capture"), 303)
        else:
            for errors in form.errors.values():
                flash("; ".join(errors), "error")
    return render_template("admin/assisted.html", form=form), status


@bp.route("/assisted/end", methods=["POST"])
@role_required("admin")
def end_assisted():
    from avatar.web.enroll import ASSIST_KEY

    if not EmptyForm().validate_on_submit():
        abort(400, "Invalid form.")
    enr_id = session.pop(ASSIST_KEY, None)
    if enr_id is not None:
        audit_event("enrollment.assisted_left", target_type="enrollment", target_id=enr_id)
    flash("You left the assisted enrollment; it can be resumed by starting a new one.", "info")
    return redirect(url_for("admin.users"), 303)


@bp.route("/audit")
@role_required("admin")
def audit_log():
    """The newest 200 events matching the filters (action prefix, actor, target, date range),
    with the result of walking the whole hash chain."""
    db = services().db
    q = sa.select(AuditEvent)
    f = {k: (request.args.get(k) or "").strip() for k in ("action", "actor", "target_type", "target_id", "since", "until")}
    if f["action"]:
        q = q.where(AuditEvent.action.startswith(f["action"], autoescape=True))
    if f["actor"].isdigit():
        q = q.where(AuditEvent.actor_id == int(f["actor"]))
    if f["target_type"]:
        q = q.where(AuditEvent.target_type == f["target_type"])
    if f["target_id"].isdigit():
        q = q.where(AuditEvent.target_id == int(f["target_id"]))
    if f["since"]:
        q = q.where(AuditEvent.at >= f["since"])
    if f["until"]:
        q = q.where(AuditEvent.at < f["until"] + "~")  # an ISO date includes that whole day
    events = db.session.scalars(q.order_by(AuditEvent.seq.desc()).limit(200)).all()
    report = audit.verify_chain(db)
    return render_template("admin/audit.html", events=events, report=report, filters=f)


@bp.route("/protected", methods=["GET", "POST"])
@role_required("admin")
def protected():
    """Protected persons: list, and add one with reference photos (each must show one human face)."""
    from avatar.analysis.checks import reference_face
    from avatar.analysis.face import FaceError
    from avatar.analysis.media import MediaError, decode_image
    from avatar.domain.enrollment import png_bytes
    from avatar.domain.protected import add_person, list_people

    svc = services()
    status = 200
    if request.method == "POST":
        name = request.form.get("name", "")
        faces, errors = [], []
        for f in request.files.getlist("photos"):
            try:
                template, aligned = reference_face(decode_image(f.read()))
                faces.append((template, png_bytes(aligned)))
            except (MediaError, FaceError) as exc:
                errors.append(f"{f.filename}: {exc}")
        if errors:
            flash("; ".join(errors), "error")
            status = 400
        else:
            person, refused = attempt(lambda: add_person(svc.db.session, svc.media, name, faces, [], by=actor()))
            if refused:
                status = refused
            else:
                flash(f"{person.name} is protected.", "info")
                return redirect(url_for("admin.protected"), 303)
    return render_template("admin/protected.html", people=list_people(svc.db.session), form=EmptyForm()), status
