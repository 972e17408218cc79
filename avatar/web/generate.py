"""Generation pages: ask for a clip of oneself (or of someone who delegated), follow its progress,
download it (requester or subject only) with its Content Credentials; the public verification page."""
from __future__ import annotations

import json
from datetime import datetime

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from avatar.domain import generation as rules
from avatar.domain.challenges import PURPOSES_LABELS
from avatar.jobs import add_job
from avatar.jobs import submit as submit_job
from avatar.store.db import utcnow
from avatar.store.media import MediaShredded
from avatar.store.models import Generation, Job, MediaObject, User
from avatar.web import services
from avatar.web.security import actor, attempt, audit_event, authenticated_at, commit, csrf

bp = Blueprint("generate", __name__)


def _subjects() -> list[User]:
    """The user themself and everyone whose delegation to them is active."""
    from avatar.domain.delegations import active, received_by

    db = services().db
    ids = dict.fromkeys(d.subject_id for d in received_by(db.session, current_user.id) if active(d))
    return [current_user] + [u for u in (db.session.get(User, i) for i in ids) if u is not None]


@bp.route("/generate", methods=["GET", "POST"])
@login_required
def index():
    """The request form and the user's generations (as requester or as subject)."""
    svc = services()
    db = svc.db
    status = 200
    if request.method == "POST":
        _, refused = attempt(lambda: submit(
            request.form.get("subject", type=int) or current_user.id, request.form.get("modality", ""),
            request.form.get("purpose", ""), request.form.get("script", ""), authenticated_at(),
            spoken_notice=request.form.get("notice") == "y"))
        if not refused:
            flash("Your clip is being made. It appears below when it is ready.", "info")
            return redirect(url_for("generate.index"), 303)
        status = refused
    rows = rules.for_user(db.session, current_user.id)
    jobs = {g.id: db.session.get(Job, g.job_id) if g.job_id else None for g in rows}
    now = utcnow()
    subjects = _subjects()
    return render_template("generate/index.html", rows=rows, jobs=jobs, subjects=subjects,
                           pictures_only=rules.pictures_only(db.session, [u.id for u in subjects]),
                           statuses={g.id: rules.status(g, now) for g in rows}, purposes=PURPOSES_LABELS,
                           notice=rules.SPOKEN_NOTICE), status


def submit(subject_id: int, modality: str, purpose: str, script: str, authenticated_at: datetime | None,
           spoken_notice: bool) -> tuple[Generation, int]:
    """Through the gate and the script screen, records the generation (and its audit event) and
    queues its job, all in one commit, then tells the runner (the page and the JSON API both come
    here). A refusal raises the DomainError (the caller, or the app's handler, rolls back)."""
    svc = services()
    db = svc.db
    gen = rules.request(db.session, svc.gate, current_user.id, subject_id, modality, purpose, script,
                        authenticated_at, backend=current_app.config["AVATAR"].VIDEO_BACKEND,
                        spoken_notice=spoken_notice, by=actor())
    job = add_job(db.session, "generation.render", {"generation_id": gen.id}, owner_id=current_user.id,
                  subject_id=gen.subject_id, max_attempts=2)
    gen.job_id = job.id
    commit()
    submit_job(svc, job.id)
    return gen, job.id


def _deliverable(generation_id: int) -> Generation:
    gen = rules.visible_to(services().db.session, current_user.id, generation_id)
    state = rules.status(gen)
    if state == "revoked":
        abort(410, "The person withdrew their consent; this clip was deleted.")
    if state == "expired":
        abort(410, "This clip has expired and was deleted.")
    if state == "pending":
        abort(409, "This clip is not ready.")
    return gen


@bp.get("/generate/<int:generation_id>/download")
@login_required
def download(generation_id: int):
    svc = services()
    gen = _deliverable(generation_id)
    obj = svc.db.session.get(MediaObject, gen.output_media_id) or abort(410)
    try:
        data = svc.media.get(svc.db.session, obj)
    except MediaShredded:
        abort(410, "This clip was deleted.")
    ext = "mp4" if obj.content_type == "video/mp4" else "wav"
    audit_event("generation.downloaded", target_type="generation", target_id=gen.id)
    return Response(data, mimetype=obj.content_type, headers={
        "Content-Disposition": f'attachment; filename="avatar-{gen.id}.{ext}"', "Cache-Control": "no-store"})


@bp.get("/generate/<int:generation_id>/manifest.json")
@login_required
def manifest(generation_id: int):
    """The Content Credentials embedded in the delivered file, as a C2PA reader prints them (the
    signed record itself is inside the file)."""
    gen = _deliverable(generation_id)
    ext = "mp4" if gen.modality == "video" else "wav"
    if not gen.manifest:
        abort(404, "This clip has no Content Credentials on record.")
    return Response(json.dumps(gen.manifest, indent=2), mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="avatar-{gen.id}.{ext}.c2pa.json"'})


def _verify_upload() -> dict:
    """Anonymous and hostile by assumption: rate-limited per address, a bounded number at once
    per process, the file read for a bounded window."""
    from avatar.domain.verification import verify
    from avatar.web.security import anonymous_work_slot

    f = request.files.get("file")
    if f is None:
        abort(400, "Send the file to check as form field 'file'.")
    data = f.read()
    if not data:
        abort(400, "The uploaded file is empty.")
    svc = services()
    with anonymous_work_slot("verify"):
        report = verify(svc.db.session, data, svc.watermark_key, svc.content_credentials.anchors_pem,
                        svc.label_keys())
    if "error" in report:
        abort(400, f"Unreadable file: {report['error']}.")
    return report


@bp.route("/verify", methods=["GET", "POST"])
def verify_page():
    """Anyone can check a file: was it generated here, is it revoked, do its Content Credentials hold?"""
    report = _verify_upload() if request.method == "POST" else None
    return render_template("generate/verify.html", report=report)


@bp.post("/api/verify")
@csrf.exempt  # a read-only check that anyone may script; it changes nothing
def verify_api():
    return jsonify(_verify_upload())
