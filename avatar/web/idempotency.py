"""`Idempotency-Key` on creating API requests (domain/idempotency.py): a retried request gets the
first answer again, marked `Idempotent-Replayed: true`, and makes nothing new."""
from __future__ import annotations

import hashlib
import json
from functools import wraps

from flask import Response, current_app, jsonify, request
from flask_login import current_user

from avatar.domain import idempotency as rules
from avatar.web import services


def _request_digest() -> str:
    """The request as far as the key binds it: the JSON body (canonical), or the form fields and
    the uploaded files' bytes."""
    if request.is_json:
        body = request.get_json(silent=True)
        return rules.digest(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    fields = sorted(((str(k), str(v)) for k, v in request.form.items(multi=True)))
    parts = [f"{k}={v}".encode() for k, v in fields]
    for name, f in sorted(request.files.items(multi=True), key=lambda item: str(item[0])):
        content = hashlib.sha256()  # in chunks: an upload is not held twice in memory for its key
        for chunk in iter(lambda f=f: f.stream.read(1 << 20), b""):
            content.update(chunk)
        f.stream.seek(0)  # the view reads it again
        parts += [str(name).encode(), content.digest()]
    return rules.digest(*parts)


def idempotent(view):
    """Honours Idempotency-Key on this route (below login_required: the key is the account's)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(*args, **kwargs)
        db = services().db
        try:
            claim = rules.claim(db, current_user.id, f"{request.method} {request.path}", rules.check_key(key),
                                _request_digest())
        except rules.StillRunning as exc:
            return jsonify({"error": str(exc), "status": 409}), 409, {"Retry-After": "1"}
        if claim.replay is not None:
            status, body = claim.replay
            return Response(body, status=status, mimetype="application/json", headers={"Idempotent-Replayed": "true"})
        try:
            resp = current_app.make_response(view(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - answered by the app's error handlers, then kept like any answer
            try:
                resp = current_app.make_response(current_app.handle_user_exception(exc))
            except BaseException:
                rules.release(db, claim.id)
                raise
        if resp.status_code >= 500 or resp.direct_passthrough:
            rules.release(db, claim.id)
        else:
            rules.record(db, claim.id, resp.status_code, resp.get_data(as_text=True))
        return resp

    return wrapper
