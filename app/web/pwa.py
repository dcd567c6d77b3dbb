"""The installable rider app: the web app manifest, the service worker served from the root scope, and the icons.

A phone installs the rider pages from ``/manifest.webmanifest`` (names in the page's language). ``/sw.js`` is
``static/sw.js`` behind a first line naming its version and the shell files: the version is a digest of the shell
files, the worker's own script and the icons, taken on every request, so a deploy that changes any of them (no
restart needed) changes the worker's bytes and browsers replace it. The shell's URLs are built with ``url_for``, so
they are the fingerprinted ones the pages ask for (app/web/assets.py). The icons are drawn here from a few shapes —
once as SVG, once rasterised to PNG with numpy — rather than shipped as downloaded images.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flask import Blueprint, Flask, Response, jsonify, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from app.errors import NotFound
from app.extensions import flask_app
from app.web.i18n import current_language

__all__ = ["ICON_SIZES", "THEME_COLOR", "bp", "icon_png", "icon_svg", "pwa_strings", "register_pwa",
           "static_version"]

bp = Blueprint("pwa", __name__)
THEME_COLOR = "#00737d"  # qala.css --accent: the bar the installed app's title bar continues
BACKGROUND_COLOR = "#f7f9fb"  # qala.css --paper
ICON_SIZES = (192, 512)
SHELL_FILES = ("qala.css", "rider.js", "stop.js", "saved.js", "bus_alert.js", "home.js", "map.js")
# the worker may fetch only from us: its own CSP is the one that governs its fetch() calls
WORKER_POLICY = "default-src 'none'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"


@dataclass(frozen=True)
class Shape:
    """A rounded rectangle (``r`` its corner radius) or, with ``circle``, a circle of diameter ``w``; in units of
    the icon's side, so one list draws every size."""

    x: float
    y: float
    w: float
    h: float
    r: float
    color: str
    circle: bool = False


# a bus seen from the front on the theme colour, inside the middle 70 % (a maskable icon's safe zone)
ICON_SHAPES = (
    Shape(0.0, 0.0, 1.0, 1.0, 0.0, THEME_COLOR),
    Shape(0.28, 0.74, 0.11, 0.09, 0.03, "#17202c"),  # wheels, below the body
    Shape(0.61, 0.74, 0.11, 0.09, 0.03, "#17202c"),
    Shape(0.24, 0.18, 0.52, 0.58, 0.08, "#ffffff"),  # body
    Shape(0.29, 0.26, 0.42, 0.22, 0.03, "#17202c"),  # windscreen
    Shape(0.36, 0.205, 0.28, 0.035, 0.015, "#17202c"),  # route sign
    Shape(0.29, 0.56, 0.09, 0.09, 0.0, "#f5a700", circle=True),  # headlights
    Shape(0.62, 0.56, 0.09, 0.09, 0.0, "#f5a700", circle=True),
)


def icon_svg() -> str:
    """The icon as SVG (scales to any size)."""
    parts = []
    for s in ICON_SHAPES:
        if s.circle:
            parts.append(f'<circle cx="{s.x + s.w / 2:g}" cy="{s.y + s.w / 2:g}" r="{s.w / 2:g}" fill="{s.color}"/>')
        else:
            parts.append(f'<rect x="{s.x:g}" y="{s.y:g}" width="{s.w:g}" height="{s.h:g}" rx="{s.r:g}" '
                         f'fill="{s.color}"/>')
    return ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1" width="512" height="512">'
            + "".join(parts) + "</svg>")


def _coverage(shape: Shape, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which sample points of the grid ``y`` (a column) × ``x`` (a row), in icon units, ``shape`` covers."""
    if shape.circle:
        radius = shape.w / 2
        inside: np.ndarray = (x - shape.x - radius) ** 2 + (y - shape.y - radius) ** 2 <= radius ** 2
        return inside
    # a rounded rectangle: the distance outside the rectangle shrunk by r is at most r
    half_w, half_h = shape.w / 2 - shape.r, shape.h / 2 - shape.r
    dx = np.maximum(np.abs(x - shape.x - shape.w / 2) - half_w, 0.0)
    dy = np.maximum(np.abs(y - shape.y - shape.h / 2) - half_h, 0.0)
    rounded: np.ndarray = dx ** 2 + dy ** 2 <= shape.r ** 2 + 1e-12
    return rounded


def _rgb(color: str) -> np.ndarray:
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def _raster(size: int, samples: int = 3) -> np.ndarray:
    """RGB pixels of the icon, each the mean of ``samples``² points (smooth edges)."""
    side = size * samples
    axis = (np.arange(side) + 0.5) / side
    image = np.zeros((side, side, 3), dtype=np.float32)
    for shape in ICON_SHAPES:  # each drawn over its own bounding box only
        cols = slice(int(shape.x * side), min(side, int(np.ceil((shape.x + shape.w) * side))))
        rows = slice(int(shape.y * side), min(side, int(np.ceil((shape.y + shape.h) * side))))
        box = image[rows, cols]
        covered = _coverage(shape, axis[cols][np.newaxis, :], axis[rows][:, np.newaxis])
        np.copyto(box, _rgb(shape.color), where=covered[..., np.newaxis])
    pixels: np.ndarray = image.reshape(size, samples, size, samples, 3).mean(axis=(1, 3))
    rounded: np.ndarray = np.rint(pixels).astype(np.uint8)
    return rounded


def _png(pixels: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of ``pixels`` (height × width × 3)."""
    height, width, _ = pixels.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))  # filter 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def icon_png(size: int) -> bytes:
    """The icon as a ``size``-pixel square PNG."""
    return _png(_raster(size))


def _built(app: Flask) -> dict[str, bytes | str]:
    """The icons, drawn once per app (they are code: they change only with a restart)."""
    built: dict[str, bytes | str] | None = app.extensions.get("pwa")
    if built is None:
        built = {f"png{size}": icon_png(size) for size in ICON_SIZES}
        built["svg"] = icon_svg()
        app.extensions["pwa"] = built
    return built


def static_version(folder: Path, names: list[str], extra: list[bytes | str]) -> str:
    """A digest of the files ``names`` under ``folder`` (names and bytes) and of ``extra``: what the worker caches
    and is. A few tens of KB hashed per request: cheaper than knowing when a deploy changed them."""
    digest = hashlib.sha256()
    for name in sorted(names):
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    for item in extra:
        digest.update(item if isinstance(item, bytes) else item.encode())
    return digest.hexdigest()[:16]


def _icons() -> list[dict[str, str]]:
    pngs = [{"src": url_for("pwa.icon", size=size), "sizes": f"{size}x{size}", "type": "image/png",
             "purpose": purpose} for size in ICON_SIZES for purpose in ("any", "maskable")]
    return [*pngs, {"src": url_for("pwa.icon_vector"), "sizes": "any", "type": "image/svg+xml", "purpose": "any"}]


@bp.get("/manifest.webmanifest")
def manifest() -> ResponseReturnValue:
    """The web app manifest in the page's language (the page links it with its ``?lang=``)."""
    body = {
        "id": "/", "start_url": "/", "scope": "/", "display": "standalone", "orientation": "portrait",
        "name": _("Qala: next buses"), "short_name": "Qala", "lang": current_language(), "dir": "ltr",
        "description": _("Live arrivals at your stops in Almaty, your saved stops and an alert when your bus is near."),
        "theme_color": THEME_COLOR, "background_color": BACKGROUND_COLOR, "icons": _icons(),
    }
    response = jsonify(body)
    response.mimetype = "application/manifest+json"
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.vary.update(("Accept-Language", "Cookie"))
    return response


@bp.get("/sw.js")
def service_worker() -> ResponseReturnValue:
    """``static/sw.js`` with its version and shell list, for the whole site (``/`` scope)."""
    app = flask_app()
    folder = Path(app.static_folder or "")
    shell = [url_for("static", filename=name) for name in SHELL_FILES if (folder / name).is_file()]
    shell += [url_for("pwa.icon", size=size) for size in ICON_SIZES] + [url_for("pwa.icon_vector")]
    built = _built(app)
    script = (folder / "sw.js").read_text(encoding="utf-8")
    version = static_version(folder, list(SHELL_FILES), [script, built["svg"], *(built[f"png{s}"] for s in ICON_SIZES)])
    preamble = f"const QALA_SW = {json.dumps({'version': version, 'shell': shell})};\n"
    response = Response(preamble + script, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"  # browsers compare it on every visit: a deploy is seen at once
    response.headers["Content-Security-Policy"] = WORKER_POLICY
    return response


@bp.get("/icons/qala-<int:size>.png")
def icon(size: int) -> ResponseReturnValue:
    if size not in ICON_SIZES:
        raise NotFound(f"There is no {size}-pixel icon; sizes are {', '.join(map(str, ICON_SIZES))}.", field="size")
    return _icon_response(_built(flask_app())[f"png{size}"], "image/png")


@bp.get("/icons/qala.svg")
def icon_vector() -> ResponseReturnValue:
    return _icon_response(_built(flask_app())["svg"], "image/svg+xml")


def _icon_response(body: bytes | str, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


def pwa_strings() -> dict[str, str]:
    """UI words of the saved stops, the offline board and the bus alert, in the page's language."""
    return {
        "as_of": _("As of %(time)s — no connection", time="{time}"),
        "alert_set": _("We will tell you when route %(route)s is %(n)s min away.", route="{route}", n="{n}"),
        "alert_due": _("Route %(route)s to %(to)s is %(m)s min away!", route="{route}", to="{to}", m="{m}"),
        "alert_now": _("Route %(route)s to %(to)s is arriving now!", route="{route}", to="{to}"),
        "alert_passed": _("Route %(route)s has left this stop; the alert is off.", route="{route}"),
        "alert_title": _("Your bus is near"), "min": _("min"), "now": _("now"),
        "no_buses": _("No buses in the next hour and a half."),
    }


@bp.app_context_processor
def _pwa_context() -> dict[str, object]:
    return {"pwa_strings": pwa_strings, "theme_color": THEME_COLOR}


def register_pwa(app: Flask) -> None:
    app.register_blueprint(bp)
