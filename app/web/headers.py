"""Security headers on every response: a Content-Security-Policy without inline script, no framing, nosniff,
a referrer policy, a permissions policy (geolocation for our own pages only) and, in production, HSTS.

Pages (``text/html``) get ``PAGE_POLICY``: scripts only from our own files (``<script type="application/json">``
data blocks are not scripts), styles from our files plus ``style=`` attributes (route colours), images from
ours, ``data:`` or the street map's tile host (``page_policy``), requests to our own origin, never framed.
Everything else — JSON, GTFS-rt, CSV, static files — gets ``RESOURCE_POLICY``, which allows nothing: a response
opened as a document can run nothing and load nothing. A 304 carries no policy (the cached response keeps its
own). The header tuples are built once per app; ``BoardPolls`` (app/realtime/serving.py) sends the same ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response

__all__ = ["PAGE_POLICY", "RESOURCE_POLICY", "install_security_headers", "page_policy", "security_headers"]

PAGE_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",  # style= attributes carry route colours; no script can run from them
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
RESOURCE_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
PERMISSIONS_POLICY = ("accelerometer=(), camera=(), geolocation=(self), gyroscope=(), magnetometer=(), "
                      "microphone=(), payment=(), usb=()")
HSTS = "max-age=31536000; includeSubDomains"  # a year; production only (development runs over plain HTTP)

Headers = tuple[tuple[str, str], ...]


def page_policy(config: Mapping[str, Any]) -> str:
    """``PAGE_POLICY`` with the street map's tile host (``MAP_TILE_URL``) allowed as an image source."""
    url = urlsplit(config["MAP_TILE_URL"])
    if url.scheme not in ("http", "https") or not url.netloc:
        return PAGE_POLICY  # `none`: no tiles to allow
    host = url.netloc.replace("{s}", "*")  # Leaflet's subdomain placeholder: a.tile…, b.tile…
    return PAGE_POLICY.replace("img-src 'self' data:", f"img-src 'self' data: {url.scheme}://{host}")


def security_headers(config: Mapping[str, Any], *, page: bool | None) -> Headers:
    """The headers for a page (``page=True``), any other response (``False``) or a 304 (``None``: no policy, so
    the one stored with the cached response stays — a cache takes a 304's headers over the stored ones)."""
    policy = [] if page is None else [("Content-Security-Policy", page_policy(config) if page else RESOURCE_POLICY)]
    headers = [
        *policy,
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),  # frame-ancestors for browsers without CSP level 2
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ("Permissions-Policy", PERMISSIONS_POLICY),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]
    if config["ENV"] == "production":
        headers.append(("Strict-Transport-Security", HSTS))
    return tuple(headers)


def install_security_headers(app: Flask) -> None:
    """Add the security headers to every response Flask sends (a header a view set itself is kept)."""
    for_pages = security_headers(app.config, page=True)
    for_resources = security_headers(app.config, page=False)
    not_modified = security_headers(app.config, page=None)

    def add_headers(response: Response) -> Response:
        if response.status_code == 304:  # no body, so no telling a page from a resource: keep the cached policy
            chosen = not_modified
        else:
            chosen = for_pages if response.mimetype == "text/html" else for_resources
        headers = response.headers
        for name, value in chosen:
            if name not in headers:
                headers[name] = value
        return response

    app.after_request(add_headers)
