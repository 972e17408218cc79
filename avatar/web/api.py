"""JSON API for the signed-in user: job status and cancel."""
from __future__ import annotations

from flask import Blueprint, abort, jsonify
from flask_login import current_user, login_required

from avatar.jobs import request_cancel
from avatar.store.models import Job
from avatar.web import services
from avatar.web.security import actor

bp = Blueprint("api", __name__, url_prefix="/api")


def _own_job(job_id: int) -> Job:
    """The job if it belongs to the current user; 404 otherwise (never reveals it exists)."""
    row = services().db.session.get(Job, job_id)
    if row is None or row.owner_id != current_user.id:
        abort(404)
    return row


@bp.get("/jobs/<int:job_id>")
@login_required
def job_status(job_id: int):
    return jsonify(_own_job(job_id).public_dict())


@bp.post("/jobs/<int:job_id>/cancel")
@login_required
def job_cancel(job_id: int):
    row = _own_job(job_id)
    accepted = request_cancel(services(), row.id, by=actor())
    return jsonify({"id": row.id, "cancel_requested": accepted}), 202 if accepted else 409
