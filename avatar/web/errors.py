"""Error pages: JSON for /api/ and JSON clients, HTML otherwise. Never a stack trace."""
from __future__ import annotations

import logging

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from avatar.domain import DomainError
from avatar.domain.gate import ReauthRequired

log = logging.getLogger(__name__)

MESSAGES = {
    400: "The request was not valid.",
    403: "You do not have access to this page.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "The upload is too large.",
    429: "Too many requests; slow down.",
    500: "Something went wrong on our side. Nothing you submitted was half-saved.",
    503: "The service is temporarily unavailable; try again shortly.",
    507: "The media store is full; nothing you sent was saved. Try again later.",
}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def render_error(status: int, message: str | None = None):
    message = message or MESSAGES.get(status, "Error.")
    if wants_json():
        resp = jsonify({"error": message, "status": status})
    else:
        resp = render_template("error.html", status=status, message=message)
    return resp, status


def init_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(exc):
        return render_error(400, f"Security token missing or invalid ({exc.description}). Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        message = None
        if exc.code == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH") or 0
            message = f"The upload is too large: the limit is {limit // (1024 * 1024)} MB."
        elif exc.description and exc.description != type(exc).description:
            message = exc.description
        body, status = render_error(exc.code or 500, message)
        headers = {}
        if exc.code == 405:  # RFC 9110: a 405 lists the methods the resource does allow
            headers.update((k, v) for k, v in exc.get_headers() if k.lower() == "allow")
        if exc.code in (429, 503) and getattr(g, "retry_after", None):
            headers["Retry-After"] = str(g.retry_after)
        return body, status, headers

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError):
        app.extensions["avatar"].db.session.rollback()
        return render_error(exc.status, str(exc))

    @app.errorhandler(ReauthRequired)
    def _reauth(exc: ReauthRequired):
        """A page sends the user to confirm their password and back; the API answers 401."""
        from flask import flash

        from avatar.web.security import to_confirm

        app.extensions["avatar"].db.session.rollback()
        if wants_json():
            return render_error(exc.status, str(exc))
        flash(str(exc), "error")
        return to_confirm()

    from avatar.jobs.core import RunnerUnavailable

    @app.errorhandler(RunnerUnavailable)
    def _queue_down(exc):
        # the job row (and any upload) was committed before the broker was called: nothing is lost
        return render_error(503, "Your request is saved, but the job queue is unreachable right now; "
                                 "it will be processed when the queue is back.")

    from avatar.store.blobs import StorageFull, StorageUnavailable

    @app.errorhandler(StorageUnavailable)
    def _storage_unavailable(exc):
        log.error("media store not writable on %s %s: %s", request.method, request.path, exc)
        app.extensions["avatar"].db.session.rollback()  # also deletes any blob this request wrote
        return render_error(503, "The media store cannot be written right now; nothing you sent was saved. "
                                 "Try again later.")

    @app.errorhandler(StorageFull)
    def _storage_full(exc):
        log.error("media store full on %s %s", request.method, request.path)
        app.extensions["avatar"].db.session.rollback()  # also deletes any blob this request wrote
        return render_error(507)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        try:
            app.extensions["avatar"].db.session.rollback()
        except Exception:  # noqa: BLE001, S110 - the connection may be gone; the error page follows anyway
            pass
        from sqlalchemy.exc import InterfaceError, OperationalError

        if isinstance(exc, (OperationalError, InterfaceError)):
            return render_error(503, "The database is unavailable; nothing was saved. Try again shortly.")
        return render_error(500)
