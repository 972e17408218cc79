"""Web layer: blueprints (thin), security wiring, error pages."""
from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter

from avatar.web.security import init_security


def _at_most(limit: str) -> str:
    """A regular expression for the decimal numbers from 0 to limit (no capturing groups)."""
    same_length = [limit] + [limit[:i] + (f"[0-{int(d) - 1}]" if d > "1" else "0") + rf"\d{{{len(limit) - i - 1}}}"
                             for i, d in enumerate(limit) if d > "0"]
    return rf"(?:\d{{1,{len(limit) - 1}}}|{'|'.join(same_length)})"


class RowIdConverter(IntegerConverter):
    """`<int:…>` in every route: a database row id, so at most 2**63 - 1; a larger number is
    simply no such page (404) instead of an overflow in the database driver. The limit is in the
    pattern itself, so a larger number matches no route for any method (404, not a 405 whose Allow
    names the methods of a route it would have matched)."""

    regex = _at_most(str(2 ** 63 - 1))

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", 2 ** 63 - 1)
        super().__init__(map, *args, **kwargs)


def init_web(app: Flask) -> None:
    from avatar.web import (
        account,
        admin,
        api,
        api_generations,
        auth,
        enroll,
        errors,
        generate,
        health,
        main,
        review,
        webhooks,
    )

    app.url_map.converters["int"] = RowIdConverter
    init_security(app)
    errors.init_errors(app)
    for bp in (auth.bp, main.bp, account.bp, admin.bp, api.bp, health.bp, enroll.bp, review.bp, generate.bp,
               api_generations.bp, webhooks.bp):
        app.register_blueprint(bp)

    @app.teardown_appcontext
    def _remove_session(exc):
        services(app).db.session.remove()


def services(app=None):
    """The Services object of the current (or given) app."""
    from flask import current_app

    return (app or current_app).extensions["avatar"]
