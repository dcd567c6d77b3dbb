"""Third-party browser files served by us from their npm packages (no CDN): Leaflet's ``dist/`` under
``/vendor/leaflet/<version>/``.

The version is in the URL, so a file's URL changes exactly when ``package.json`` pins another release: browsers
may keep each one for a year without asking again. Only Leaflet's built files are served (no source maps, no
package metadata); a missing ``node_modules`` (``make install`` not run) is a 404, and the pages then keep
their own SVG map.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from flask import Blueprint, Flask, abort, send_from_directory
from flask.typing import ResponseReturnValue

__all__ = ["LEAFLET_DIST", "bp", "leaflet_version", "register_vendor"]

NODE_MODULES = Path(__file__).resolve().parent.parent.parent / "node_modules"
LEAFLET_DIST = NODE_MODULES / "leaflet" / "dist"
# what the pages load: the minified script, its stylesheet and the stylesheet's images
SERVED_SUFFIXES = (".js", ".css", ".png", ".svg")
YEAR_S = 365 * 86400

bp = Blueprint("vendor", __name__)


@cache
def leaflet_version() -> str:
    """Leaflet's version as installed (``node_modules/leaflet/package.json``), or ``missing``."""
    try:
        meta = json.loads((LEAFLET_DIST.parent / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "missing"
    return str(meta.get("version", "missing"))


@bp.get("/vendor/leaflet/<version>/<path:filename>")
def leaflet(version: str, filename: str) -> ResponseReturnValue:
    """One of Leaflet's built files, cached for a year (immutable: a new release has a new URL)."""
    if version != leaflet_version() or not filename.endswith(SERVED_SUFFIXES) or filename.endswith(".esm.js") \
            or "-src" in filename:
        abort(404)
    response = send_from_directory(LEAFLET_DIST, filename, max_age=YEAR_S)
    response.headers["Cache-Control"] = f"public, max-age={YEAR_S}, immutable"
    return response


def register_vendor(app: Flask) -> None:
    app.register_blueprint(bp)
