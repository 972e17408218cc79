"""Health endpoints for load balancers and operators."""
from __future__ import annotations

from flask import Blueprint, jsonify

from avatar.analysis.model_files import check_model_files
from avatar.web import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up and serving."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Database reachable, media store writable, model files present: 200, else 503 naming what failed."""
    svc = services()
    checks: dict[str, dict] = {}
    try:
        svc.db.ping()
        checks["database"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        svc.media.check_writable()
        checks["media"] = {"ok": True, "backend": svc.media.blobs.name}
    except Exception as exc:  # noqa: BLE001
        checks["media"] = {"ok": False, "error": type(exc).__name__}
    models = check_model_files()
    checks["models"] = {"ok": all(m["ok"] for m in models.values()), "files": models}
    ok = all(c["ok"] for c in checks.values())
    return jsonify({"status": "ready" if ok else "unavailable", "checks": checks}), 200 if ok else 503
