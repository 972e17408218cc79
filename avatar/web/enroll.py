"""Enrollment: live capture with a server-issued challenge, optional paragraph, consent, submission."""
from __future__ import annotations

import random

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from avatar.analysis.media import Limits, MediaError, MediaFile
from avatar.domain import challenges
from avatar.domain import enrollment as rules
from avatar.domain.challenges import PURPOSES_LABELS
from avatar.jobs import add_job, submit
from avatar.store.models import User
from avatar.web import services
from avatar.web.forms import ConsentForm
from avatar.web.idempotency import idempotent
from avatar.web.security import actor, attempt, client_ip, commit

bp = Blueprint("enroll", __name__)
UPLOAD_LIMITS = Limits(max_seconds=90, max_pixels=1920 * 1080)


def _rng() -> random.Random | None:
    """A seeded generator only where the test-only setting allows it (see Config)."""
    seed = current_app.config["AVATAR"].CHALLENGE_SEED
    return random.Random(seed) if seed is not None else None  # noqa: S311 - tests only; otherwise SystemRandom


ASSIST_KEY = "assist_enrollment"


def subject() -> User:
    """Whose enrollment these pages work on: the logged-in user's own, or, while an admin records
    an assisted (in-person) enrollment on their device, that person's."""
    enr = rules.assisted_enrollment(services().db.session, current_user, session.get(ASSIST_KEY))
    if enr is None:
        session.pop(ASSIST_KEY, None)
        return current_user
    return services().db.session.get(User, enr.user_id)


@bp.get("/enroll")
@login_required
def overview():
    """Where the user's enrollment stands and what to do next."""
    db = services().db
    person = subject()
    enr = rules.current_enrollment(db.session, person.id)
    face = enr and enr.face_profile
    voice = enr and enr.voice_profile
    from avatar.analysis.reading import MIN_SPEECH_SECONDS, TEXT

    read = bool(enr and enr.scores and enr.scores.get("reading"))
    return render_template("enroll/overview.html", enrollment=enr, face=face, voice=voice,
                           min_voice=rules.MIN_VOICE_SECONDS, person=person, reading_text=TEXT,
                           reading_min=int(MIN_SPEECH_SECONDS), read=read)


@bp.get("/enroll/capture")
@login_required
def capture():
    """The capture page; the challenge itself is fetched by its script (POST /api/enroll/sessions)."""
    return render_template("enroll/capture.html", person=subject())


@bp.post("/api/enroll/sessions")
@login_required
@idempotent
def new_session():
    """Issues a random challenge: ordered actions with their windows, a 6-digit code, the statement.
    The nonce expires in 3 minutes and is single use. max_prompt_lag: how late a prompt may be
    reported (prompt_times); record_tail: how long to record past the statement's time."""
    db = services().db
    ls = rules.start(db.session, subject(), current_app.config["AVATAR"].SERVICE_NAME, _rng(), by=actor())
    commit()
    return jsonify({"nonce": ls.nonce, "plan": ls.plan, "code": ls.code, "statement": ls.statement,
                    "expires_at": ls.expires_at.isoformat() + "Z", "max_prompt_lag": challenges.MAX_PROMPT_LAG,
                    "record_tail": challenges.RECORD_TAIL}), 201


def _read_upload(field: str) -> bytes:
    f = request.files.get(field)
    if f is None:
        abort(400, f"Send the file as multipart form field '{field}'.")
    data = f.read()
    if not data:
        abort(400, "The uploaded file is empty.")
    return data


def _check_upload(data: bytes, video: bool) -> None:
    """400 unless the upload decodes: a video with sound (video=True) or anything with sound."""
    try:
        with MediaFile(data, UPLOAD_LIMITS) as mf:
            if video and (not mf.probe.has_video or mf.probe.is_image):
                raise MediaError("the upload is not a video")
            if not mf.probe.has_audio:
                raise MediaError("the recording has no audio track; allow the microphone" if video
                                 else "the upload has no sound")
    except MediaError as exc:
        abort(400, f"Unusable {'recording' if video else 'audio'}: {exc}.")


@bp.post("/api/enroll/sessions/<nonce>/recording")
@login_required
@idempotent
def upload_recording(nonce: str):
    """Accepts the recording for a challenge once: checks it is a readable video with sound,
    stores it encrypted and queues its verification. The result is polled at /api/jobs/<id>.
    Optional form field prompt_times: JSON list, when each prompt appeared (seconds into the
    recording, each action's then the statement's); the check allows for a late page by as much."""
    data = _read_upload("recording")
    _check_upload(data, video=True)
    svc = services()
    db = svc.db
    person = subject()
    # one transaction: the challenge used up, the recording, its audit event and its job are saved
    # together or not at all; the runner hears of the job only after the commit
    ls = rules.receive_recording(db.session, svc.media, person, nonce, data,
                                 request.files["recording"].mimetype or "video/webm", request.form.get("prompt_times"),
                                 by=actor())
    job = add_job(db.session, "enrollment.verify", {"liveness_session_id": ls.id}, owner_id=current_user.id,
                  subject_id=person.id, max_attempts=2)
    ls.job_id = job.id
    commit()
    submit(svc, job.id)
    return jsonify({"job_id": job.id, "status_url": url_for("api.job_status", job_id=job.id)}), 202


@bp.post("/api/enroll/paragraph")
@login_required
def upload_paragraph():
    """An extra reading of the shown paragraph, to reach enough speech for the voice profile.
    Accepted only if it is the voice of the live capture."""
    data = _read_upload("audio")
    _check_upload(data, video=False)
    svc, person = services(), subject()
    vp, upload = rules.receive_reading(svc.db.session, svc.media, person, data,  # refused: the app's JSON error
                                       request.files["audio"].mimetype or "audio/webm", by=actor())
    return _check_later("enrollment.voice_extra", {"voice_profile_id": vp.id, "media_id": upload.id}, person)


@bp.post("/api/enroll/reading")
@login_required
def upload_reading():
    """The on-camera reading of the shown text (analysis.reading.TEXT), after a passed live capture:
    stored encrypted, checked by a job against the capture's face and voice; passed, it is the
    footage the talking head is made from."""
    data = _read_upload("video")
    _check_upload(data, video=True)
    svc, person = services(), subject()
    enr, upload = rules.receive_camera_reading(svc.db.session, svc.media, person, data,  # refused: the app's JSON error
                                               request.files["video"].mimetype or "video/webm", by=actor())
    return _check_later("enrollment.reading", {"enrollment_id": enr.id, "media_id": upload.id}, person)


def _check_later(job_name: str, payload: dict, person):
    """Queues the job that checks a stored upload, commits the upload with its audit event and the
    job together, tells the runner; answers 202 with the job's id."""
    svc = services()
    job = add_job(svc.db.session, job_name, payload, owner_id=current_user.id, subject_id=person.id, max_attempts=1)
    commit()
    submit(svc, job.id)
    return jsonify({"job_id": job.id}), 202


@bp.route("/enroll/consent", methods=["GET", "POST"])
@login_required
def consent():
    """Granular consent (face / voice, purposes, expiry) on the exact versioned text, then the
    likeness guard, then submission for review."""
    svc = services()
    db = svc.db
    person = subject()
    enr = rules.current_enrollment(db.session, person.id)
    if enr is None or enr.state != "captured":
        flash("Complete the live capture first.", "error")
        return redirect(url_for("enroll.overview"))
    form = ConsentForm()
    if form.validate_on_submit():
        scopes = [s for s, on in (("face", form.face.data), ("voice", form.voice.data)) if on]
        purposes = [p for p in PURPOSES_LABELS if getattr(form, p).data]
        cfg = current_app.config["AVATAR"]
        result, refused = attempt(lambda: rules.consent_and_submit(  # one commit: consent, submission, their events
            db.session, svc.media, person, cfg.SERVICE_NAME, scopes, purposes, form.days.data or 365, client_ip(),
            request.user_agent.string, cfg.GUARD_BACKEND, by=actor()))
        if refused:
            return _consent_page(form, refused, person)
        if person.id != current_user.id:
            session.pop(ASSIST_KEY, None)
            flash(f"{person.full_name}'s assisted enrollment is waiting for review by another reviewer.", "info")
            return redirect(url_for("admin.users"))
        if result["blocked"]:
            flash("Your likeness resembles someone already enrolled or protected. A reviewer will look at it.", "error")
        else:
            flash("Thank you. Your enrollment is waiting for review.", "info")
        return redirect(url_for("enroll.overview"))
    return _consent_page(form, 400 if request.method == "POST" else 200, person)


def _consent_page(form, status, person):
    """The form with the exact text that will be recorded (for the default choices; the stored
    text names exactly the choices ticked)."""
    from datetime import timedelta

    from avatar.store.db import utcnow

    text = rules.consent_text(person, current_app.config["AVATAR"].SERVICE_NAME, ["face", "voice"],
                              ["personal"], utcnow() + timedelta(days=365))
    return render_template("enroll/consent.html", form=form, text=text, person=person), status


@bp.get("/api/enroll/status")
@login_required
def status():
    enr = rules.current_enrollment(services().db.session, subject().id)
    if enr is None:
        return jsonify({"state": None})
    return jsonify({"state": enr.state, "flags": enr.flags if enr.state != "submitted" else [],
                    "submitted_at": enr.submitted_at.isoformat() + "Z" if enr.submitted_at else None})


