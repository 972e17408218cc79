"""The API's contract (OpenAPI 3.1, served at /api/openapi.json): every /api/ route, every status
each can answer, one error schema, the two ways to authenticate. tests/test_api_contract.py runs
Schemathesis against a real `avatar serve` with it, with a token and with a session."""
from __future__ import annotations

from avatar.domain.challenges import PURPOSES_LABELS
from avatar.domain.gate import MODALITY_SCOPES
from avatar.domain.webhooks import EVENTS, MAX_URL

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict, example=None) -> dict:
    media = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"application/json": media}


def _error(description: str) -> dict:
    return {"description": description, "content": _json(ERROR)}


GENERATION_EXAMPLE = {"modality": "speech", "purpose": "personal", "spoken_notice": True,
                      "script": "Hello, this is a short note for my sister. See you on Sunday."}
GENERATION_ACCEPTED = {"generation_id": 42, "job_id": 97, "status_url": "/api/generations/42"}
WEBHOOK_EXAMPLE = {"url": "https://hooks.example.com/avatar", "events": ["generation.ready", "generation.failed"],
                   "description": "our CMS"}
ENDPOINT_EXAMPLE = {"id": 3, "url": "https://hooks.example.com/avatar", "events": ["generation.failed", "generation.ready"],
                    "description": "our CMS", "secret_version": 1, "created_at": "2026-12-06T16:00:00Z",
                    "previous_secret_until": None}
EVENT_DATA = {  # what each event's "data" holds: ids and states, never media or personal data
    "generation.ready": {"generation_id": 42, "job_id": 97, "state": "ready", "modality": "speech"},
    "generation.failed": {"generation_id": 42, "job_id": 97, "state": "failed"},
    "generation.revoked": {"generation_id": 42, "subject_id": 7, "state": "revoked"},
    "enrollment.decided": {"enrollment_id": 12, "state": "approved"},
    "consent.withdrawn": {"subject_id": 7, "state": "withdrawn"},
    "consent.expired": {"subject_id": 7, "state": "expired"},
}
WEBHOOK_HEADERS = [
    {"name": "webhook-id", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "The message id, the same on every retry (deduplicate on it)"},
    {"name": "webhook-timestamp", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "Unix seconds of this attempt (refuse old ones, e.g. over 5 minutes)"},
    {"name": "webhook-signature", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "Space-separated v1,<base64 HMAC-SHA256 over id.timestamp.body> with the endpoint's secret "
                    "(the bytes after whsec_); two during the day after a rotation"},
]


def _webhooks() -> dict:
    """The calls this service makes (OpenAPI 3.1 `webhooks`), one per event."""
    out = {}
    for event, data in EVENT_DATA.items():
        body = {"type": "object", "required": ["type", "timestamp", "data"], "properties": {
            "type": {"const": event}, "timestamp": {"type": "string", "format": "date-time"},
            "data": {"type": "object"}}}
        out[event] = {"post": {
            "summary": EVENTS[event][:1].upper() + EVENTS[event][1:], "parameters": WEBHOOK_HEADERS,
            "requestBody": {"required": True, "content": _json(body, {"type": event, "timestamp":
                                                                      "2026-12-06T16:00:00.000000Z", "data": data})},
            "responses": {"2XX": {"description": "Received (anything else is tried again, for about a day)"}}}}
    return out


def _op(summary: str, ok: dict, *, auth: bool = True, body: dict | None = None, ids: bool = False,
        errors: dict | None = None, parameters: list | None = None) -> dict:
    """An operation: its success answers, then the errors every such operation can give (an
    authenticated one: 401 and 403; one with ids in its path: 404; one with a body: 400 and 413),
    then its own."""
    responses = dict(ok)
    if auth:
        responses["401"] = _error("Not logged in, or an invalid or revoked API token")
        responses["403"] = _error("Not allowed: e.g. the token lacks the scope, or a session needs the X-CSRFToken header")
    if ids:
        responses["404"] = _error("No such resource of yours")
    if body is not None:
        responses["400"] = _error("Malformed request")
        responses["413"] = _error("Over the upload limit (AVATAR_MAX_UPLOAD_MB)")
    responses.update(errors or {})
    op = {"summary": summary, "responses": responses}
    if not auth:
        op["security"] = []
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    if parameters:
        op["parameters"] = parameters
    return op


def _id(name: str) -> dict:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2 ** 63 - 1}}


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    "description": "Retry safely: the same key (per account and route, 24 h) returns the first answer (marked "
                   "Idempotent-Replayed: true) and makes nothing new; with a different body it is a 422."}
IDEMPOTENCY_ERRORS = {
    "400": _error("Malformed request, or a malformed Idempotency-Key"),
    "409": _error("A request with this Idempotency-Key is still being made (Retry-After), or the state forbids it"),
    "422": _error("Refused as sent, or the Idempotency-Key was used with another body"),
}


def document(service_name: str) -> dict:
    generation = {"type": "object", "required": ["modality", "purpose", "script"], "additionalProperties": True,
                  "properties": {"modality": {"enum": list(MODALITY_SCOPES)}, "purpose": {"enum": list(PURPOSES_LABELS)},
                                 "script": {"type": "string", "minLength": 1, "maxLength": 1000},
                                 "subject_id": {"type": "integer", "minimum": 1, "maximum": 2 ** 63 - 1}, "spoken_notice": {"type": "boolean"}}}
    verify_form = {"multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}}}}}
    recording_form = {"multipart/form-data": {"schema": {"type": "object", "required": ["recording"], "properties": {
        "recording": {"type": "string", "format": "binary", "contentMediaType": "video/webm"},
        "prompt_times": {"type": "string", "description": "JSON list: when each prompt appeared, seconds into "
                                                          "the recording (each action's, then the statement's)"}}}}}
    paragraph_form = {"multipart/form-data": {"schema": {"type": "object", "required": ["audio"], "properties": {
        "audio": {"type": "string", "format": "binary", "contentMediaType": "audio/webm"}}}}}
    reading_form = {"multipart/form-data": {"schema": {"type": "object", "required": ["video"], "properties": {
        "video": {"type": "string", "format": "binary", "contentMediaType": "video/webm"}}}}}
    obj = {"type": "object"}
    webhook = {"type": "object", "required": ["url", "events"], "additionalProperties": True, "properties": {
        "url": {"type": "string", "minLength": 1, "maxLength": MAX_URL,
                "description": "https:// (http:// too where the operator allows private addresses)"},
        "events": {"type": "array", "minItems": 1, "items": {"enum": list(EVENTS)}},
        "description": {"type": "string", "maxLength": 200}}}
    webhook_limits = {"429": _error("Too many webhook changes from this account (20 an hour; Retry-After)")}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{service_name} API", "version": "1",
                 "description": "Identity-verified avatars, consent first. Errors are JSON: {\"error\", \"status\"}. "
                                "Rate-limited answers carry RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset; "
                                "429 and 503 carry Retry-After; 405 carries Allow."},
        "components": {
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer",
                          "description": "Per-user API token from /account/tokens (scopes: generations, enroll, "
                                         "webhooks)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "avatar_session",
                            "description": "A browser session; state-changing requests also send X-CSRFToken"}},
            "schemas": {"Error": {"type": "object", "required": ["error", "status"], "properties": {
                "error": {"type": "string"}, "status": {"type": "integer"}}}}},
        "security": [{"token": []}, {"session": []}],
        "webhooks": _webhooks(),
        "paths": {
            "/api/generations": {
                "get": _op("Your generations (as requester or subject)", {"200": {"description": "The list", "content": _json(obj)}}),
                "post": _op("Ask for a clip through the consent gate", {
                    "202": {"description": "Queued", "content": _json(obj, GENERATION_ACCEPTED)}},
                    body=_json(generation, GENERATION_EXAMPLE), errors={
                    "403": _error("The consent gate refused (no consent for this, or not the person's)"),
                    **IDEMPOTENCY_ERRORS}, parameters=[IDEMPOTENCY_KEY])},
            "/api/generations/{generation_id}": {"get": _op(
                "One generation with its job", {"200": {"description": "The generation", "content": _json(obj)}},
                ids=True, parameters=[_id("generation_id")])},
            "/api/generations/{generation_id}/download": {"get": _op(
                "The labeled file (requester or subject)", {"200": {"description": "MP4 or WAV"}}, ids=True,
                errors={"409": _error("Not ready yet"), "410": _error("Revoked or expired")},
                parameters=[_id("generation_id")])},
            "/api/generations/{generation_id}/manifest.json": {"get": _op(
                "The Content Credentials embedded in the file, as a C2PA reader prints them", {
                    "200": {"description": "The active C2PA manifest with its validation_state", "content": _json(obj)}},
                ids=True, errors={"409": _error("Not ready yet"), "410": _error("Revoked or expired")},
                parameters=[_id("generation_id")])},
            "/api/jobs/{job_id}": {"get": _op("Job state and progress", {
                "200": {"description": "The job", "content": _json(obj)}}, ids=True, parameters=[_id("job_id")])},
            "/api/jobs/{job_id}/cancel": {"post": _op("Cancel a job", {
                "202": {"description": "Asked", "content": _json(obj)}}, ids=True,
                errors={"409": _error("The job has already ended")}, parameters=[_id("job_id")])},
            "/api/enroll/sessions": {"post": _op(
                "A new challenge: actions with their windows, a code to say, the statement",
                {"201": {"description": "The challenge (single use, 3 minutes)", "content": _json(obj)}},
                errors={**IDEMPOTENCY_ERRORS, "409": _error("Already enrolled, or the key is in use"),
                        "429": _error("Too many challenges or failed attempts (the message says how long to wait)")},
                parameters=[IDEMPOTENCY_KEY])},
            "/api/enroll/sessions/{nonce}/recording": {"post": _op(
                "The recording that answers the challenge (once)",
                {"202": {"description": "Stored encrypted; its check is a job", "content": _json(obj)}},
                body=recording_form, ids=True, errors={
                    **IDEMPOTENCY_ERRORS, "409": _error("This challenge was already used"),
                    "503": _error("Nothing was saved (storage or database briefly unavailable), or saved and "
                                  "queued for when the job runner is back (the message says which)"),
                    "507": _error("The media store is full: nothing was saved")},
                parameters=[{"name": "nonce", "in": "path", "required": True,
                             "schema": {"type": "string", "minLength": 1, "maxLength": 64}}, IDEMPOTENCY_KEY])},
            "/api/enroll/paragraph": {"post": _op(
                "An extra reading of the paragraph, for the voice", {
                    "202": {"description": "Stored encrypted; its check is a job", "content": _json(obj)}},
                body=paragraph_form, errors={"409": _error("Complete the live capture (with your voice) first"),
                                             "507": _error("The media store is full: nothing was saved")})},
            "/api/enroll/reading": {"post": _op(
                "The on-camera reading of the shown text: the footage the talking head is made from", {
                    "202": {"description": "Stored encrypted; its check is a job", "content": _json(obj)}},
                body=reading_form, errors={"409": _error("Complete the live capture first"),
                                           "429": _error("Six readings an hour at most"),
                                           "507": _error("The media store is full: nothing was saved")})},
            "/api/enroll/status": {"get": _op("Where your enrollment stands", {
                "200": {"description": "The state and what is missing", "content": _json(obj)}})},
            "/api/verify": {"post": _op(
                "Was this file generated here? (anyone; the first 30 s are read)", {
                    "200": {"description": "The report: generated, finding (one sentence), generation_id, watermark, "
                                           "content_credentials (C2PA: present, state, "
                                           "ours, signer, generation, watermark_id, failures), aigc_label (present, "
                                           "label, bound), revoked", "content": _json(obj)}},
                auth=False, body=verify_form, errors={
                    "429": _error("Too many checks from this address (Retry-After; AVATAR_VERIFY_RATE_PER_MINUTE, "
                                  "10 a minute by default)"),
                    "503": _error("Busy with other checks (Retry-After)")})},
            "/api/webhooks": {
                "get": _op("Your webhook endpoints, and the events there are", {
                    "200": {"description": "The endpoints", "content": _json(obj)}}),
                "post": _op("Register a callback URL (the answer holds its signing secret, once)", {
                    "201": {"description": "The endpoint and its secret (whsec_…)", "content": _json(obj, {
                        "endpoint": ENDPOINT_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})}},
                    body=_json(webhook, WEBHOOK_EXAMPLE), errors={
                        "400": _error("Malformed request, unknown events, or too many endpoints (10)"),
                        "422": _error("The URL is refused: not https, resolving to a private, loopback or "
                                      "link-local address, or not resolving at all"),
                        **webhook_limits})},
            "/api/webhooks/{endpoint_id}": {
                "get": _op("One endpoint with its last 20 deliveries and their attempts", {
                    "200": {"description": "The endpoint", "content": _json(obj)}}, ids=True,
                    parameters=[_id("endpoint_id")]),
                "delete": _op("Stop sending to an endpoint (pending deliveries are cancelled)", {
                    "204": {"description": "Deleted"}}, ids=True, parameters=[_id("endpoint_id")])},
            "/api/webhooks/{endpoint_id}/rotate-secret": {"post": _op(
                "A new signing secret (in the answer, once); the previous one signs beside it for a day", {
                    "200": {"description": "The endpoint and its new secret", "content": _json(obj)}}, ids=True,
                errors=webhook_limits, parameters=[_id("endpoint_id")])},
            "/api/openapi.json": {"get": _op("This document", {"200": {"description": "OpenAPI 3.1",
                                                                        "content": _json(obj)}}, auth=False)},
            "/api/docs": {"get": _op("This document as a page", {"200": {"description": "HTML", "content": {
                "text/html": {"schema": {"type": "string"}}}}}, auth=False)},
        },
    }
