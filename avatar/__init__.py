"""avatar: identity-verified digital avatars and voice cloning, consent first."""
from __future__ import annotations

import logging
from typing import Any, Mapping

from flask import Flask
from flask.json.provider import DefaultJSONProvider


class _BoundedJSON(DefaultJSONProvider):
    """Request bodies nested too deeply for the parser are invalid JSON (a 400), not a crash."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc


def create_app(test_config: Mapping[str, Any] | None = None, *, start_jobs: bool | None = None) -> Flask:
    """Builds the app. Settings come from AVATAR_* environment variables; test_config (a
    mapping of the same names without the prefix) overrides them for tests."""
    from avatar.config import Config
    from avatar.jobs import definitions  # noqa: F401 - registers job functions
    from avatar.jobs.runners import start_runner
    from avatar.resources import resource_dir
    from avatar.services import Services
    from avatar.web import init_web

    cfg = Config.from_env(overrides=dict(test_config or {}))
    app = Flask(__name__, instance_path=cfg.INSTANCE_PATH, template_folder=str(resource_dir("templates")),
                static_folder=str(resource_dir("static")))
    app.json = _BoundedJSON(app)
    app.config.update(
        SECRET_KEY=cfg.secret_key(),
        TESTING=cfg.TESTING,
        MAX_CONTENT_LENGTH=cfg.MAX_UPLOAD_MB * 1024 * 1024,
        SESSION_COOKIE_SECURE=cfg.SECURE_COOKIES,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="avatar_session",
        REMEMBER_COOKIE_SECURE=cfg.SECURE_COOKIES,
        REMEMBER_COOKIE_HTTPONLY=True,
        PERMANENT_SESSION_LIFETIME=60 * 60 * 8,
        WTF_CSRF_TIME_LIMIT=60 * 60 * 8,
        WTF_CSRF_ENABLED=True,
        WTF_CSRF_CHECK_DEFAULT=False,  # checked in web.security, except for API-token requests
        AVATAR=cfg,
    )
    services = Services(cfg)
    app.extensions["avatar"] = services
    if start_jobs if start_jobs is not None else cfg.JOB_RUNNER != "none":
        start_runner(services)
    init_web(app)
    logging.getLogger("avatar").setLevel(logging.INFO)
    return app
