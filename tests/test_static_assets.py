"""Static files: fingerprinted URLs served immutable, stale or bare ones revalidated, a favicon, gzip where it pays
(never on the SSE stream), and in a real browser: the pages load their fingerprinted, gzipped assets, axe-clean."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient

from app.web.assets import IMMUTABLE, REVALIDATE
from tests.api_feed import add_demo_feed
from tests.browser import axe_violations, chromium, live_server, needs_axe, needs_chromium
from tests.fixtures.boards import S2_ARRIVALS, write_s2_board
from tests.worker_feed import add_worker_feed

GZIP = {"Accept-Encoding": "gzip, deflate"}
ASSET = re.compile(r'(?:src|href)="(/static/[^"]+)"')


@pytest.fixture
def demo(app: Flask) -> Flask:
    add_demo_feed(app)
    return app


def rider_pages(client: FlaskClient) -> list[str]:
    """Every rider page of the demo feed: home, route list, card, and the first route and stop linked."""
    routes = client.get("/routes").get_data(as_text=True)
    route = re.search(r'href="(/routes/[^"?]+)"', routes)
    stop = re.search(r'href="(/stops/[^"?]+)"', client.get(route.group(1) if route else "/").get_data(as_text=True))
    assert route and stop, "the demo feed's pages link a route and a stop"
    return ["/", "/?lang=ru", "/routes", "/card", route.group(1), stop.group(1)]


def test_every_asset_of_every_rider_page_is_fingerprinted_and_immutable(demo: Flask, client: FlaskClient) -> None:
    seen: set[str] = set()
    for path in rider_pages(client):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "immutable" not in page.headers.get("Cache-Control", ""), path  # pages keep their own headers
        seen.update(ASSET.findall(page.get_data(as_text=True)))
    assert any(url.startswith("/static/qala.css?v=") for url in seen) and len(seen) >= 3, seen
    for url in seen:
        assert re.search(r"\?v=[0-9a-f]{12}$", url), url
        answer = client.get(url.replace("&amp;", "&"))
        assert answer.status_code == 200 and answer.headers["Cache-Control"] == IMMUTABLE, url


def test_bare_stale_and_service_worker_urls_are_revalidated(app: Flask, client: FlaskClient,
                                                           tmp_path: Path) -> None:
    assert client.get("/static/qala.css").headers["Cache-Control"] == REVALIDATE
    assert client.get("/static/qala.css?v=000000000000").headers["Cache-Control"] == REVALIDATE
    assert app.static_folder is not None
    worker = Path(app.static_folder) / "sw.js"
    if worker.exists():  # another part of the issue adds one: it must never be immutable even fingerprinted
        with app.test_request_context():
            url = url_for("static", filename="sw.js")
        assert client.get(url).headers["Cache-Control"] == REVALIDATE


def test_changing_a_file_changes_its_url(tmp_path: Path) -> None:
    from app import create_app

    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'q.db'}"})
    app.static_folder = str(tmp_path / "static")
    (tmp_path / "static").mkdir()
    from app.web.assets import Fingerprints

    app.extensions["asset_fingerprints"].folder = Path(app.static_folder)  # the hook reads this folder
    target = tmp_path / "static" / "board.css"
    target.write_text("body { color: black; }", encoding="utf-8")
    with app.test_request_context():
        before = url_for("static", filename="board.css")
        target.write_text("body { color: navy; }", encoding="utf-8")
        after = url_for("static", filename="board.css")
        missing = url_for("static", filename="nope.css")
    assert before != after and before.startswith("/static/board.css?v=")
    assert after == f"/static/board.css?v={Fingerprints(tmp_path / 'static').of('board.css')}"
    assert missing == "/static/nope.css"  # no such file: no fingerprint (and a 404 when asked)


def test_favicon_is_an_image(client: FlaskClient) -> None:
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype in ("image/vnd.microsoft.icon", "image/x-icon")
    assert icon.data[:4] == b"\0\0\1\0" and b"PNG" in icon.data[:40]  # an ICO holding a PNG
    svg = client.get("/static/favicon.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"


def test_text_is_gzipped_when_accepted_and_sizes_shrink(demo: Flask, client: FlaskClient) -> None:
    sizes = {}
    for url in ("/routes", "/static/qala.css", "/static/rider.js", "/api/v1/openapi.json"):
        plain = client.get(url)
        packed = client.get(url, headers=GZIP)
        assert plain.status_code == packed.status_code == 200, url
        assert "Content-Encoding" not in plain.headers and packed.headers["Content-Encoding"] == "gzip", url
        assert "Accept-Encoding" in packed.headers["Vary"] and "Accept-Encoding" in plain.headers["Vary"], url
        assert gzip.decompress(packed.data) == plain.data, url  # once, not twice
        assert int(packed.headers["Content-Length"]) == len(packed.data) < len(plain.data) / 2, url
        sizes[url] = (len(plain.data), len(packed.data))
    print(json.dumps(sizes))  # before/after bytes, shown with pytest -s


def test_small_and_binary_answers_stay_plain(demo: Flask, client: FlaskClient) -> None:
    assert "Content-Encoding" not in client.get("/healthz", headers=GZIP).headers  # tiny JSON
    assert "Content-Encoding" not in client.get("/favicon.ico", headers=GZIP).headers  # an image
    assert "Content-Encoding" not in client.get("/routes", headers={"Accept-Encoding": "gzip;q=0"}).headers


def test_a_compressed_static_file_revalidates_with_its_own_etag(client: FlaskClient) -> None:
    first = client.get("/static/qala.css", headers=GZIP)
    etag = first.headers["ETag"]
    assert etag.endswith('-gz"')
    again = client.get("/static/qala.css", headers={**GZIP, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""


def test_the_sse_stream_is_not_compressed_and_still_streams(app: Flask) -> None:
    add_worker_feed(app)
    app.config["REALTIME_SSE_HEARTBEAT_S"] = 0.3
    write_s2_board(app)
    client = app.test_client()
    response = client.get(S2_ARRIVALS + "/stream", buffered=False, headers=GZIP)
    assert response.status_code == 200 and "Content-Encoding" not in response.headers
    stream = iter(response.response)  # type: ignore[arg-type]
    assert next(stream).decode().startswith("retry:")
    assert next(stream).decode().startswith("event: board\n")  # each event arrives as it is written
    write_s2_board(app, vehicle="BUS-8")
    assert "BUS-8" in next(stream).decode()
    response.close()


@needs_chromium
@needs_axe
def test_a_browser_gets_the_favicon_and_gzipped_fingerprinted_assets(demo: Flask) -> None:
    with live_server(demo) as base, chromium() as browser:
        page = browser.new_context(bypass_csp=True).new_page()  # axe is injected as a script
        answers: dict[str, dict[str, str]] = {}
        page.on("response", lambda r: answers.__setitem__(r.url, r.headers))
        for path in ("/", "/routes", "/card"):
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            assert axe_violations(page) == [], path
        icon = page.evaluate("document.querySelector('link[rel=icon]').href")
        assert "/static/favicon.svg?v=" in icon
        css = next(url for url in answers if "/static/qala.css?v=" in url)
        assert answers[css]["content-encoding"] == "gzip" and answers[css]["cache-control"] == IMMUTABLE
        page.goto(base + "/display/" + "S1")
        assert "/static/favicon.svg?v=" in page.evaluate("document.querySelector('link[rel=icon]').href")
        assert axe_violations(page) == []
