"""JSON API for generation, mirroring /generate: session or API-token auth (`Authorization:
Bearer avt_…`), and the OpenAPI document at /api/openapi.json."""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request, url_for
from flask_login import current_user, login_required

from avatar.domain import generation as rules
from avatar.domain.challenges import PURPOSES_LABELS
from avatar.domain.gate import MODALITY_SCOPES
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
    from avatar.web.generate import _authenticated_at, submit

    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify({"error": "Send a JSON object."}), 400
    subject_id = body.get("subject_id", current_user.id)
    if not isinstance(subject_id, int) or isinstance(subject_id, bool) or not all(isinstance(body.get(k, ""), str)
                                                  for k in ("modality", "purpose", "script")):
        return jsonify({"error": "modality, purpose and script are strings; subject_id is an integer."}), 400
    token = bool(g.get("token_auth"))
    gen, job_id = submit(subject_id, body.get("modality", ""), body.get("purpose", ""), body.get("script", ""),
                         utcnow() if token else _authenticated_at(), spoken_notice=body.get("spoken_notice") is True)
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


def _op(summary: str, auth: bool = True, body: dict | None = None, responses: dict | None = None) -> dict:
    op = {"summary": summary, "responses": responses or {"200": {"description": "OK"}}}
    if not auth:
        op["security"] = []
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    return op


@bp.get("/openapi.json")
def openapi():
    """The API's OpenAPI 3.1 document."""
    json_body = lambda schema: {"application/json": {"schema": schema}}  # noqa: E731
    multipart = {"multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}, "manifest": {"type": "string", "format": "binary"}}}}}
    gen_body = json_body({"type": "object", "required": ["modality", "purpose", "script"], "properties": {
        "modality": {"enum": list(MODALITY_SCOPES)}, "purpose": {"enum": list(PURPOSES_LABELS)},
        "script": {"type": "string", "maxLength": 1000}, "subject_id": {"type": "integer"},
        "spoken_notice": {"type": "boolean"}}})
    id_param = lambda name: [{"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}]  # noqa: E731
    idempotency_key = {"name": "Idempotency-Key", "in": "header", "required": False,
                       "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
                       "description": "Retry safely: the same key (per account, 24 h) returns the first answer and "
                                      "makes nothing new; with a different body it is a 422."}
    doc = {
        "openapi": "3.1.0",
        "info": {"title": f"{current_app.config['AVATAR'].SERVICE_NAME} API", "version": "1"},
        "components": {"securitySchemes": {
            "token": {"type": "http", "scheme": "bearer", "description": "Per-user API token from /account/tokens"},
            "session": {"type": "apiKey", "in": "cookie", "name": "avatar_session"}}},
        "security": [{"token": []}, {"session": []}],
        "paths": {
            "/api/generations": {
                "get": _op("Your generations (as requester or subject)"),
                "post": {**_op("Ask for a clip through the consent gate", body=gen_body, responses={
                    "202": {"description": "Queued (a replay of the first answer carries Idempotent-Replayed: true)"},
                    "400": {"description": "Malformed body or Idempotency-Key"}, "401": {"description": "Log in again"},
                    "403": {"description": "The consent gate refused"},
                    "409": {"description": "A request with this Idempotency-Key is still being made (Retry-After)"},
                    "422": {"description": "Script refused, or the Idempotency-Key was used with another body"}}),
                    "parameters": [idempotency_key]}},
            "/api/generations/{generation_id}": {"get": {**_op("One generation with its job"),
                                                        "parameters": id_param("generation_id")}},
            "/api/generations/{generation_id}/download": {"get": {**_op("The labeled file (requester or subject)", responses={
                "200": {"description": "MP4 or WAV"}, "409": {"description": "Not ready"},
                "410": {"description": "Revoked or expired"}}), "parameters": id_param("generation_id")}},
            "/api/generations/{generation_id}/manifest.json": {"get": {**_op("The signed provenance manifest"),
                                                               "parameters": id_param("generation_id")}},
            "/api/jobs/{job_id}": {"get": {**_op("Job state and progress"), "parameters": id_param("job_id")}},
            "/api/jobs/{job_id}/cancel": {"post": {**_op("Cancel a job", responses={"202": {"description": "Asked"}}),
                                                  "parameters": id_param("job_id")}},
            "/api/enroll/status": {"get": _op("Where your enrollment stands")},
            "/api/verify": {"post": _op("Was this file generated here? (anyone; the first 30 s are read)", auth=False,
                                        body=multipart, responses={
                "200": {"description": "The report: generated, finding (one sentence), generation_id, watermark, "
                                       "manifest_valid, manifest, content_credentials (C2PA: present, state, ours, "
                                       "signer, generation, watermark_id, failures), aigc_label (present, label, "
                                       "bound), revoked"},
                "400": {"description": "Unreadable file or manifest"}, "413": {"description": "Over the upload limit"},
                "429": {"description": "Too many checks from this address (Retry-After). Every answer carries "
                                       "RateLimit-Limit (AVATAR_VERIFY_RATE_PER_MINUTE, 10 by default, per minute "
                                       "and address), RateLimit-Remaining and RateLimit-Reset (seconds)"},
                "503": {"description": "Busy with other checks (Retry-After)"}})},
            "/api/openapi.json": {"get": _op("This document", auth=False)},
        },
    }
    return jsonify(doc)
