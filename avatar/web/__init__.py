"""Web layer: blueprints (thin), security wiring, error pages."""
from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter

from avatar.web.security import init_security


class RowIdConverter(IntegerConverter):
    """`<int:…>` in every route: a database row id, so at most 2**63 - 1; a larger number is
    simply no such page (404) instead of an overflow in the database driver."""

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
    )

    app.url_map.converters["int"] = RowIdConverter
    init_security(app)
    errors.init_errors(app)
    for bp in (auth.bp, main.bp, account.bp, admin.bp, api.bp, health.bp, enroll.bp, review.bp, generate.bp,
               api_generations.bp):
        app.register_blueprint(bp)

    @app.teardown_appcontext
    def _remove_session(exc):
        services(app).db.session.remove()


def services(app=None):
    """The Services object of the current (or given) app."""
    from flask import current_app

    return (app or current_app).extensions["avatar"]
