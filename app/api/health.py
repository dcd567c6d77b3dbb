"""Liveness (``/healthz``) and readiness (``/readyz``: database and Redis reachable)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from app.api.spec import endpoint
from app.extensions import get_db, get_redis

__all__ = ["bp"]

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@endpoint("Liveness: the process answers", response="Health", tag="health")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@bp.get("/readyz")
@endpoint("Readiness: database and Redis reachable (503 when not)", response="Readiness", tag="health",
          other_responses=[(503, "Readiness", "Not ready: `checks` names what is unreachable")])
def readyz() -> ResponseReturnValue:
    checks: dict[str, Any] = {}
    try:
        with get_db(current_app).engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # readiness must report, not raise
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        get_redis(current_app).ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ready else "not_ready", checks=checks), 200 if ready else 503
