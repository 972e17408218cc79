"""Reviewer queue and decisions; revocation by the subject (one click) or an admin."""
from __future__ import annotations

import base64

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from avatar.domain import evidence
from avatar.domain import review as rules
from avatar.store.media import MediaShredded
from avatar.store.models import Enrollment, MediaObject, User
from avatar.web import services
from avatar.web.forms import DecisionForm, ReasonForm
from avatar.web.security import actor, attempt, audit_event, commit, role_required

bp = Blueprint("review", __name__)


@bp.get("/review")
@role_required("reviewer", "admin")
def queue():
    """Submitted enrollments, oldest first, with their flags."""
    db = services().db
    rows = [(e, db.session.get(User, e.user_id)) for e in rules.queue(db.session)]
    return render_template("review/queue.html", rows=rows)


def _reviewable(enrollment_id: int) -> Enrollment:
    """The enrollment, for a reviewer who is not its subject (the admin who recorded an assisted
    enrollment may look, having seen it all, but not decide: domain.review).

    :raise 404: no such enrollment
    :raise 403: one's own enrollment: its evidence stays closed to oneself
    """
    enr = services().db.session.get(Enrollment, enrollment_id) or abort(404)
    if current_user.id == enr.user_id:
        abort(403, "You cannot review your own enrollment.")
    return enr


@bp.route("/review/<int:enrollment_id>", methods=["GET", "POST"])
@role_required("reviewer", "admin")
def decide(enrollment_id: int):
    """Approve or reject with a required reason; never one's own enrollment."""
    db = services().db
    enr = _reviewable(enrollment_id)
    form = DecisionForm()
    if form.validate_on_submit():
        _, refused = attempt(lambda: rules.decide(db.session, current_user, enr.id, form.decision.data,
                                                  form.reason.data, by=actor()))
        if refused:
            return _evidence_page(enr, form, refused)
        flash(f"Enrollment {enr.id}: {enr.state}.", "info")
        return redirect(url_for("review.queue"), 303)
    return _evidence_page(enr, form, 400 if request.method == "POST" else 200)


def _evidence_page(enr: Enrollment, form, status: int):
    """The evidence, decrypted on the fly; the view is audited."""
    svc = services()
    db = svc.db
    ls = evidence.last_capture(db.session, enr)
    frames = []
    if ls is not None:
        try:
            rec = evidence.recording_bytes(db.session, svc.media, ls)
            frames = [{**f, "src": "data:image/jpeg;base64," + base64.b64encode(f["jpeg"]).decode()}
                      for f in (evidence.key_frames(rec, ls.result) if rec else [])]
        except MediaShredded:
            frames = []
    audit_event("review.viewed", target_type="enrollment", target_id=enr.id)
    assisted_by = db.session.get(User, enr.assisted_by_id) if enr.assisted_by_id else None
    return render_template("review/decide.html", enrollment=enr, form=form, subject=db.session.get(User, enr.user_id),
                           assisted_by=assisted_by, capture=ls, frames=frames, consent=evidence.consent_of(db.session, enr),
                           footage=enr.face_profile is not None and enr.face_profile.footage_media_id is not None), status


def _capture_or_404(enrollment_id: int):
    svc = services()
    enr = _reviewable(enrollment_id)
    ls = evidence.last_capture(svc.db.session, enr) or abort(404)
    return svc, enr, ls


@bp.get("/review/<int:enrollment_id>/timeline.png")
@role_required("reviewer", "admin")
def timeline(enrollment_id: int):
    _, enr, ls = _capture_or_404(enrollment_id)
    return Response(evidence.timeline_png(ls.result or {}, evidence.shown_plan(ls)), mimetype="image/png",
                    headers={"Cache-Control": "no-store"})


@bp.get("/review/<int:enrollment_id>/statement.wav")
@role_required("reviewer", "admin")
def statement(enrollment_id: int):
    svc, enr, ls = _capture_or_404(enrollment_id)
    try:
        rec = evidence.recording_bytes(svc.db.session, svc.media, ls) or abort(404)
    except MediaShredded:
        abort(410, "This person's media was destroyed.")
    audit_event("review.media_viewed", target_type="enrollment", target_id=enr.id, details={"media": "statement"})
    return Response(evidence.statement_audio(rec, evidence.shown_plan(ls)), mimetype="audio/wav",
                    headers={"Cache-Control": "no-store"})


def _decrypted(obj: MediaObject, gone: str) -> bytes:
    """The medium's bytes; 410 with `gone` when its subject's media was shredded."""
    svc = services()
    try:
        return svc.media.get(svc.db.session, obj)
    except MediaShredded:
        abort(410, gone)


@bp.get("/review/<int:enrollment_id>/footage.mp4")
@role_required("reviewer", "admin")
def footage(enrollment_id: int):
    """The footage the person's talking head is made from (their on-camera reading, or the statement)."""
    svc = services()
    enr = _reviewable(enrollment_id)
    fp = enr.face_profile
    obj = svc.db.session.get(MediaObject, fp.footage_media_id if fp is not None and fp.footage_media_id else 0) or abort(404)
    data = _decrypted(obj, "This person's media was destroyed.")
    audit_event("review.media_viewed", target_type="enrollment", target_id=enr.id, details={"media": "footage"})
    return Response(data, mimetype="video/mp4", headers={"Cache-Control": "no-store"})


@bp.get("/review/<int:enrollment_id>/guard-match.png")
@role_required("reviewer", "admin")
def guard_match(enrollment_id: int):
    """The reference image of the identity the likeness guard matched."""
    svc = services()
    enr = _reviewable(enrollment_id)
    hit = (enr.guard or {}).get("face") or abort(404)
    obj = svc.db.session.get(MediaObject, hit.get("reference_media_id") or 0) or abort(404)
    data = _decrypted(obj, "The matched person's media was destroyed.")
    audit_event("review.media_viewed", target_type="enrollment", target_id=enr.id,
                details={"media": "guard_match", "matched": hit.get("label")})
    return Response(data, mimetype="image/png", headers={"Cache-Control": "no-store"})


@bp.post("/admin/users/<int:user_id>/revoke")
@role_required("admin")
def revoke_user(user_id: int):
    svc = services()
    user = svc.db.session.get(User, user_id) or abort(404)
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400, "A reason is required.")
    rules.revoke(svc.db.session, svc.media, current_user, user.id, form.reason.data, by=actor())
    commit()
    flash(f"Revoked the likeness of {user.email}.", "info")
    return redirect(url_for("admin.users"), 303)
