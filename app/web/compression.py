"""Gzip for text responses over 1 KB when the client accepts it (pages, CSS, JS, JSON, SVG; static files too).

Done in an ``after_request`` hook for what Flask answers. Of the two fast paths in front of Flask
(``app.fastpaths``), the board poll gzips its answer the same way (``app.realtime.serving.compressed``: same
bytes, ``-gz`` ETag and 304 as the view), and validator taps (small JSON) stay as they are.
Never compressed: a streamed body (Server-Sent Events must reach the display as each event is written), a body
that already has a Content-Encoding, partial content and bodiless answers. A compressible response always
carries ``Vary: Accept-Encoding``; a compressed one gets the ETag of its own bytes (``<etag>-gz``) and answers
``If-None-Match`` for it with 304. Brotli would need a compiled package; gzip at level 6 gets most of the gain.
"""

from __future__ import annotations

import gzip

from flask import Flask, Response, request

__all__ = ["COMPRESSIBLE", "MIN_SIZE", "install_compression"]

MIN_SIZE = 1024
LEVEL = 6
COMPRESSIBLE = frozenset({
    "text/html", "text/css", "text/javascript", "application/javascript", "application/json",
    "application/geo+json", "application/problem+json", "application/manifest+json", "image/svg+xml",
    "text/plain", "text/csv",
})


def install_compression(app: Flask) -> None:
    app.after_request(compress)


def compress(response: Response) -> Response:
    """Gzip ``response`` in place when it is worth it and the client accepts it."""
    if not _compressible(response):
        return response
    response.vary.add("Accept-Encoding")
    if not _accepts_gzip() or (response.is_streamed and not response.direct_passthrough):
        return response
    response.direct_passthrough = False  # a static file: read it so it can be compressed
    body = response.get_data()
    if len(body) < MIN_SIZE:
        return response
    response.set_data(gzip.compress(body, compresslevel=LEVEL, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    etag, weak = response.get_etag()
    if etag:
        response.set_etag(f"{etag}-gz", weak=bool(weak))
        response.make_conditional(request)
    return response


def _compressible(response: Response) -> bool:
    return (response.status_code == 200 and response.mimetype in COMPRESSIBLE
            and "Content-Encoding" not in response.headers and "Content-Range" not in response.headers
            and (response.content_length is None or response.content_length >= MIN_SIZE))


def _accepts_gzip() -> bool:
    return request.accept_encodings["gzip"] > 0
