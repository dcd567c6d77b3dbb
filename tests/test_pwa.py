"""The installable app's server side: the manifest in each language, the service worker's headers and version, and
icons that are real PNGs of their size with our art."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from flask import url_for
from flask.testing import FlaskClient

from app.web.pwa import ICON_SIZES, THEME_COLOR, static_version


def decode_png(data: bytes) -> np.ndarray:
    """Pixels of an 8-bit RGB, filter-0 PNG (what the app writes), read back independently of the writer."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: dict[bytes, bytes] = {}
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        assert struct.unpack(">I", data[at + 8 + length:at + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        at += 12 + length
    width, height, depth, color_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, color_type) == (8, 2)
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(height, 1 + width * 3)
    assert not raw[:, 0].any()  # every row unfiltered
    return raw[:, 1:].reshape(height, width, 3)


@pytest.mark.parametrize(("lang", "name"), [("kk", "Qala: жақын автобустар"), ("ru", "Qala: ближайшие автобусы"),
                                            ("en", "Qala: next buses")])
def test_manifest_names_the_app_in_the_page_language(client: FlaskClient, lang: str, name: str) -> None:
    response = client.get(f"/manifest.webmanifest?lang={lang}")
    assert response.status_code == 200 and response.mimetype == "application/manifest+json"
    body = response.get_json(force=True)
    assert (body["name"], body["lang"], body["short_name"]) == (name, lang, "Qala")
    assert (body["start_url"], body["scope"], body["display"], body["theme_color"]) == ("/", "/", "standalone",
                                                                                         THEME_COLOR)
    sizes = {icon["sizes"] for icon in body["icons"] if icon["type"] == "image/png"}
    assert sizes == {f"{s}x{s}" for s in ICON_SIZES}


def test_without_a_choice_the_manifest_follows_the_browser_then_russian(client: FlaskClient) -> None:
    english = client.get("/manifest.webmanifest", headers={"Accept-Language": "en-GB,en;q=0.8"}).get_json(force=True)
    unknown = client.get("/manifest.webmanifest", headers={"Accept-Language": "de"}).get_json(force=True)
    assert (english["lang"], unknown["lang"]) == ("en", "ru")


@pytest.mark.parametrize("size", ICON_SIZES)
def test_icons_are_pngs_of_their_size_with_the_bus_on_the_theme_colour(client: FlaskClient, size: int) -> None:
    response = client.get(f"/icons/qala-{size}.png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    pixels = decode_png(response.data)
    theme = [int(THEME_COLOR[i:i + 2], 16) for i in (1, 3, 5)]
    assert pixels.shape == (size, size, 3)
    assert pixels[2, 2].tolist() == theme  # corner: the full-bleed background (maskable)
    assert pixels[int(size * 0.6), size // 2].tolist() == [255, 255, 255]  # the bus's white front


def test_an_icon_size_we_do_not_draw_is_a_json_404_naming_the_size(client: FlaskClient) -> None:
    response = client.get("/icons/qala-64.png")
    assert response.status_code == 404
    assert response.get_json()["error"]["field"] == "size"


def test_the_svg_icon_is_the_same_art(client: FlaskClient) -> None:
    response = client.get("/icons/qala.svg")
    assert response.mimetype == "image/svg+xml"
    text = response.get_data(as_text=True)
    assert text.startswith("<svg") and f'fill="{THEME_COLOR}"' in text and text.count("<rect") == 6


def test_the_service_worker_takes_the_root_scope_and_names_its_version_and_shell(client: FlaskClient) -> None:
    response = client.get("/sw.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert response.headers["Service-Worker-Allowed"] == "/" and response.headers["Cache-Control"] == "no-cache"
    assert "connect-src 'self'" in response.headers["Content-Security-Policy"]
    first_line, rest = response.get_data(as_text=True).split("\n", 1)
    assert first_line.startswith("const QALA_SW = {") and 'addEventListener("fetch"' in rest
    # the shell as the pages name it (fingerprinted static URLs), so the worker's cache matches their requests
    assert url_for_static(client, "qala.css") in first_line and '"/icons/qala-192.png"' in first_line


def url_for_static(client: FlaskClient, filename: str) -> str:
    with client.application.test_request_context():
        return '"' + url_for("static", filename=filename) + '"'


def test_the_version_changes_with_any_shell_file(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("one")
    (tmp_path / "b.css").write_text("two")
    names = ["a.js", "b.css", "absent.js"]
    before = static_version(tmp_path, names, [b"icon"])
    assert static_version(tmp_path, names, [b"icon"]) == before  # stable while nothing changes
    (tmp_path / "b.css").write_text("two!")
    changed = static_version(tmp_path, names, [b"icon"])
    assert changed != before and static_version(tmp_path, names, [b"other icon"]) != changed


def test_a_deploy_changes_the_worker_without_a_restart(client: FlaskClient, tmp_path: Path) -> None:
    """What browsers compare: the bytes of /sw.js, which must differ once a shell file has changed."""
    static = Path(client.application.static_folder or "")
    before = client.get("/sw.js").data
    assert client.get("/sw.js").data == before
    saved = (static / "saved.js").read_bytes()
    try:
        (static / "saved.js").write_bytes(saved + b"\n// a deploy\n")
        assert client.get("/sw.js").data != before
    finally:
        (static / "saved.js").write_bytes(saved)
    assert client.get("/sw.js").data == before


def test_every_rider_page_links_the_manifest_in_its_language(client: FlaskClient) -> None:
    for path in ("/?lang=kk", "/routes?lang=kk", "/card?lang=kk", "/stops/NOPE?lang=kk"):
        text = client.get(path).get_data(as_text=True)
        assert '<link rel="manifest" href="/manifest.webmanifest?lang=kk">' in text, path
        assert 'data-sw="/sw.js"' in text, path
