"""Webhook endpoints: the page /account/webhooks (register, rotate a secret, delete, and each
endpoint's recent deliveries with their attempts) and the same through /api/webhooks (a session or
a token with the `webhooks` scope). The rules are in domain/webhooks.py, delivery in jobs/webhooks.py."""
from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from avatar.domain import webhooks as rules
from avatar.jobs.webhooks import resolve
from avatar.web import services
from avatar.web.forms import EmptyForm
from avatar.web.security import actor, attempt, commit, fresh_login_required, rate_limited

bp = Blueprint("webhooks", __name__)


def _limited() -> None:
    """Registering and rotating are limited per account (each registration resolves a host)."""
    if rate_limited("webhook", f"user:{current_user.id}"):
        abort(429, "Too many webhook changes; try again within the hour.")


def _create(url, events, description):
    svc = services()
    return rules.create_endpoint(svc.db.session, current_user, url, events, description, by=actor(),
                                 allow_private=svc.config.WEBHOOK_ALLOW_PRIVATE, resolve=resolve)


def _secret(row) -> str:
    """The endpoint's current secret, for the one answer that shows it."""
    return rules.secret_for(services().webhook_key, row.id, row.secret_version)


# -- the page --------------------------------------------------------------------------------

@bp.route("/account/webhooks", methods=["GET", "POST"])
@login_required
def page():
    if request.method == "POST":
        return _create_from_form()
    return _page(None, 200)


@fresh_login_required
def _create_from_form():
    if not EmptyForm().validate_on_submit():
        abort(400, "Invalid form.")
    _limited()
    row, refused = attempt(lambda: _create(request.form.get("url", ""), request.form.getlist("event"),
                                           request.form.get("description", "")))
    if refused:
        return _page(None, refused)
    return _page({"endpoint_id": row.id, "secret": _secret(row)}, 200)


@bp.post("/account/webhooks/<int:endpoint_id>/rotate")
@login_required
@fresh_login_required
def rotate(endpoint_id: int):
    if not EmptyForm().validate_on_submit():
        abort(400, "Invalid form.")
    _limited()
    row = rules.rotate_secret(services().db.session, current_user, endpoint_id, by=actor())  # refused: error page
    commit()
    return _page({"endpoint_id": row.id, "secret": _secret(row), "rotated": True}, 200)


@bp.post("/account/webhooks/<int:endpoint_id>/delete")
@login_required
def delete(endpoint_id: int):
    if not EmptyForm().validate_on_submit():
        abort(400, "Invalid form.")
    row = rules.delete_endpoint(services().db.session, current_user, endpoint_id, by=actor())
    commit()
    flash(f"Webhook endpoint {row.url} deleted; nothing more is sent to it.", "info")
    return redirect(url_for("webhooks.page"), 303)


def _page(shown: dict | None, status: int):
    session = services().db.session
    endpoints = rules.live_endpoints(session, current_user.id)
    return render_template("account_webhooks.html", endpoints=endpoints, shown=shown, form=EmptyForm(),
                           events=rules.EVENTS, deliveries={e.id: rules.deliveries(session, e) for e in endpoints},
                           allow_private=services().config.WEBHOOK_ALLOW_PRIVATE), status


# -- the API ---------------------------------------------------------------------------------

@bp.get("/api/webhooks")
@login_required
def api_list():
    endpoints = rules.live_endpoints(services().db.session, current_user.id)
    return jsonify({"endpoints": [rules.public_endpoint(e) for e in endpoints], "events": rules.EVENTS})


@bp.post("/api/webhooks")
@login_required
@fresh_login_required
def api_create():
    """Body: {"url", "events": [...], "description"}. The answer holds the secret, once."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "Send a JSON object.")
    if not isinstance(body.get("url", ""), str) or not isinstance(body.get("description", ""), str):
        abort(400, "url and description are strings; events is a list of event names.")
    _limited()
    row = _create(body.get("url", ""), body.get("events"), body.get("description", ""))
    commit()  # the endpoint and its audit event together
    return jsonify({"endpoint": rules.public_endpoint(row), "secret": _secret(row)}), 201


@bp.get("/api/webhooks/<int:endpoint_id>")
@login_required
def api_get(endpoint_id: int):
    session = services().db.session
    row = rules.owned_endpoint(session, current_user, endpoint_id)
    return jsonify({"endpoint": rules.public_endpoint(row),
                    "deliveries": [rules.public_delivery(d) for d in rules.deliveries(session, row)]})


@bp.delete("/api/webhooks/<int:endpoint_id>")
@login_required
def api_delete(endpoint_id: int):
    rules.delete_endpoint(services().db.session, current_user, endpoint_id, by=actor())
    commit()
    return "", 204


@bp.post("/api/webhooks/<int:endpoint_id>/rotate-secret")
@login_required
@fresh_login_required
def api_rotate(endpoint_id: int):
    """A new secret (in the answer, once); the previous one keeps signing beside it for a day."""
    _limited()
    row = rules.rotate_secret(services().db.session, current_user, endpoint_id, by=actor())
    commit()
    return jsonify({"endpoint": rules.public_endpoint(row), "secret": _secret(row)})
