"""JSON API for generation, mirroring /generate: session or API-token auth (`Authorization:
Bearer avt_…`), and the OpenAPI document at /api/openapi.json."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, g, jsonify, request, url_for
from flask_login import current_user, login_required

from avatar.domain import generation as rules
from avatar.store.db import utcnow
from avatar.store.models import Generation, Job
from avatar.web import services
from avatar.web.idempotency import idempotent

bp = Blueprint("api_generations", __name__, url_prefix="/api")


def _public(gen: Generation) -> dict:
    job = services().db.session.get(Job, gen.job_id) if gen.job_id else None
    ready = rules.status(gen) == "ready"
    return {"id": gen.id, "modality": gen.modality, "purpose": gen.purpose, "subject_id": gen.subject_id,
            "requester_id": gen.requester_id, "script": gen.script, "watermark_id": gen.watermark_id,
            "created_at": gen.created_at.isoformat() + "Z",
            "expires_at": gen.expires_at.isoformat() + "Z" if gen.expires_at else None,
            "revoked": gen.revoked_at is not None, "job": job.public_dict() if job is not None else None,
            "download_url": url_for("api_generations.download", generation_id=gen.id) if ready else None,
            "manifest_url": url_for("api_generations.manifest", generation_id=gen.id) if ready else None}


@bp.get("/generations")
@login_required
def list_generations():
    rows = rules.for_user(services().db.session, current_user.id, limit=100)
    return jsonify({"generations": [_public(r) for r in rows]})


@bp.post("/generations")
@login_required
@idempotent
def create_generation():
    """Body: {"modality": "video"|"speech", "purpose", "script", "subject_id" (default: yourself),
    "spoken_notice": true to end with a spoken AI notice}.
    A token counts as a fresh log-in; a browser session must be under 15 minutes old."""
    from avatar.web.generate import submit
    from avatar.web.security import authenticated_at

    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "Send a JSON object.")
    subject_id = body.get("subject_id", current_user.id)
    if isinstance(subject_id, float) and subject_id.is_integer():
        subject_id = int(subject_id)  # JSON has one kind of number: 7.0 is the integer 7
    if (not isinstance(subject_id, int) or isinstance(subject_id, bool) or not 0 < subject_id < 2 ** 63
            or not all(isinstance(body.get(k, ""), str) for k in ("modality", "purpose", "script"))):
        abort(400, "modality, purpose and script are strings; subject_id is an integer from 1 to 2^63-1.")
    token = bool(g.get("token_auth"))
    gen, job_id = submit(subject_id, body.get("modality", ""), body.get("purpose", ""), body.get("script", ""),
                         utcnow() if token else authenticated_at(), spoken_notice=body.get("spoken_notice") is True)
    return jsonify({"generation_id": gen.id, "job_id": job_id,
                    "status_url": url_for("api_generations.get_generation", generation_id=gen.id)}), 202


@bp.get("/generations/<int:generation_id>")
@login_required
def get_generation(generation_id: int):
    return jsonify(_public(rules.visible_to(services().db.session, current_user.id, generation_id)))


@bp.get("/generations/<int:generation_id>/download")
@login_required
def download(generation_id: int):
    """The labeled file, as on the page (requester or subject; 409 not ready; 410 revoked/expired)."""
    from avatar.web import generate

    return generate.download(generation_id)


@bp.get("/generations/<int:generation_id>/manifest.json")
@login_required
def manifest(generation_id: int):
    from avatar.web import generate

    return generate.manifest(generation_id)


@bp.get("/openapi.json")
def openapi():
    """The API's OpenAPI 3.1 document (web/contract.py)."""
    from avatar.web.contract import document

    return jsonify(document(current_app.config["AVATAR"].SERVICE_NAME))


@bp.get("/docs")
def docs():
    """The contract as a page (rendered here from web/contract.py: no script, no CDN)."""
    from flask import render_template

    from avatar.web.contract import document

    return render_template("api_docs.html", doc=document(current_app.config["AVATAR"].SERVICE_NAME))
