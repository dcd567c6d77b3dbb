"""Shared pieces of the browser tests: Debian's Chromium driven by playwright, and the app on a live port.

Never ``playwright install``: the project drives the system ``/usr/bin/chromium``.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

__all__ = ["AXE_JS", "CHROMIUM", "SHOTS", "axe_violations", "chromium", "live_server", "needs_axe", "needs_chromium"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = os.environ.get("QALA_SCREENSHOTS")  # a folder: tests that make screenshots write them there
needs_chromium = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian chromium is not installed")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (skips the module when the playwright package is missing)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free local port in a thread; yields its base URL."""
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        thread.join(5)


AXE_JS = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
needs_axe = pytest.mark.skipif(not AXE_JS.is_file(), reason="axe-core is not installed (make node)")


def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """Run axe-core (from npm, pinned in package-lock.json) on the page as it stands; its violations of ``impacts``.

    Each violation keeps axe's ``id``, ``impact``, ``help`` and the CSS targets of its nodes, so a failing
    assertion names what to fix.
    """
    # evaluated through the DevTools protocol, which the pages' Content-Security-Policy (script-src 'self') does not
    # govern, so the page under test keeps its real headers
    page.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;void 0")
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "targets": [node["target"] for node in v["nodes"]][:10]}
            for v in result["violations"] if v["impact"] in impacts]
