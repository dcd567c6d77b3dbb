"""Feeds given by URL: download to a temporary file (size-capped) so the rest of the import sees a path."""

from __future__ import annotations

import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["MAX_FEED_BYTES", "FeedDownloadError", "feed_path"]

MAX_FEED_BYTES = 1 << 30
CHUNK = 1 << 20


class FeedDownloadError(Exception):
    """A feed URL could not be fetched (network error, HTTP error, or too large)."""


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


@contextmanager
def feed_path(source: str | Path, *, timeout_s: float = 60.0) -> Iterator[Path]:
    """Yield a local path for ``source``: the path itself, or a downloaded copy of a URL."""
    text = str(source)
    if not is_url(text):
        yield Path(source)
        return
    folder = Path(tempfile.mkdtemp(prefix="qala-feed-"))
    target = folder / "feed.zip"
    try:
        _download(text, target, timeout_s)
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _download(url: str, target: Path, timeout_s: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "qala-gtfs-import"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response, target.open("wb") as out:
            size = 0
            while chunk := response.read(CHUNK):
                size += len(chunk)
                if size > MAX_FEED_BYTES:
                    raise FeedDownloadError(f"{url}: larger than {MAX_FEED_BYTES >> 20} MiB")
                out.write(chunk)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise FeedDownloadError(f"{url}: {exc}") from exc
