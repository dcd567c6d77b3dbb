"""Static files under fingerprinted URLs, cached for a year; anything that can change under its URL, revalidated.

``url_for('static', filename='qala.css')`` gives ``/static/qala.css?v=<first 12 hex of the file's SHA-256>``, so a
changed file gets a new URL and a browser may keep the old one forever (``immutable``). A request whose ``v`` is
not the file's current fingerprint (none, or a stale page's) gets ``no-cache``: the browser revalidates by ETag.
A service worker script is never immutable, fingerprint or not: browsers check it for updates and must reach us.
The fingerprint is recomputed when the file's size or modification time changes (no restart after a deploy).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

__all__ = ["IMMUTABLE", "REVALIDATE", "Fingerprints", "install_assets"]

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
SERVICE_WORKERS = frozenset({"sw.js", "service-worker.js"})  # browsers poll these: never cached for long


class Fingerprints:
    """Content fingerprints of the files in one static folder, kept per (size, mtime) of each file."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._known: dict[str, tuple[int, int, str]] = {}

    def of(self, filename: str) -> str | None:
        """The fingerprint of ``filename`` (relative to the folder), or None when there is no such file."""
        path = self.folder / filename
        try:
            stat = os.stat(path)
        except OSError:
            return None
        known = self._known.get(filename)
        if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
            return known[2]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        self._known[filename] = (stat.st_size, stat.st_mtime_ns, digest)
        return digest


def install_assets(app: Flask) -> None:
    """Fingerprint every static URL the app builds, set the static files' Cache-Control, serve /favicon.ico."""
    assert app.static_folder is not None
    fingerprints = Fingerprints(app.static_folder)
    app.extensions["asset_fingerprints"] = fingerprints

    def add_fingerprint(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "static" and "v" not in values:
            digest = fingerprints.of(str(values.get("filename", "")))
            if digest is not None:
                values["v"] = digest

    def cache_static(response: Response) -> Response:
        if request.endpoint in ("static", "favicon") and response.status_code in (200, 304):
            response.headers["Cache-Control"] = static_cache_control(fingerprints, request.view_args or {},
                                                                     request.args.get("v"))
        return response

    def favicon() -> Response:
        return app.send_static_file("favicon.ico")

    app.url_defaults(add_fingerprint)
    app.after_request(cache_static)
    app.add_url_rule("/favicon.ico", "favicon", favicon)


def static_cache_control(fingerprints: Fingerprints, view_args: dict[str, Any], asked: str | None) -> str:
    """Immutable for the current fingerprint of an ordinary file; revalidate for everything else."""
    filename = str(view_args.get("filename", "favicon.ico"))
    if Path(filename).name in SERVICE_WORKERS or asked is None:
        return REVALIDATE
    return IMMUTABLE if asked == fingerprints.of(filename) else REVALIDATE
