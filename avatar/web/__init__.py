"""Web layer: blueprints (thin), security wiring, error pages."""
from __future__ import annotations

from flask import Flask

from avatar.web.security import init_security


def init_web(app: Flask) -> None:
    from avatar.web import (
        admin, api, api_generations, auth, delegations, enroll, errors, generate, health, main, review, tokens,
    )

    init_security(app)
    errors.init_errors(app)
    for bp in (auth.bp, main.bp, admin.bp, api.bp, health.bp, enroll.bp, review.bp, generate.bp,
               api_generations.bp, tokens.bp, delegations.bp):
        app.register_blueprint(bp)

    @app.teardown_appcontext
    def _remove_session(exc):
        services(app).db.session.remove()


def services(app=None):
    """The Services object of the current (or given) app."""
    from flask import current_app

    return (app or current_app).extensions["avatar"]
