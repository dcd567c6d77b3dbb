"""Answering "next buses at this stop": the stop's Redis board when it is there, else the timetable.

Redis being down, slow or the board expired never turns into an error: the answer then comes from the
schedule with ``realtime: false`` and ``source: "schedule"``. A ``RedisBreaker`` keeps a dead Redis from
costing a timeout on every request; the first request after its cool-down tries again, so service returns
to the live boards by itself.

The displays' poll — ``GET /api/v1/stops/<stop_id>/arrivals`` with no parameters or only ``limit``, most of the
API's traffic — is answered by ``BoardPolls`` in front of Flask (installed by ``app.fastpaths``): one Redis round
trip, then the stored bytes, the board cut to ``limit`` rows, or 304. It and the Flask view send what one function
builds, ``arrivals_reply``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from werkzeug.datastructures import Accept
from werkzeug.http import http_date, parse_accept_header, parse_etags, quote_etag, unquote_etag

from app.extensions import get_db, get_redis
from app.realtime.boards import content_etag
from app.realtime.build import BOARD_LIMIT
from app.realtime.catalog import complete_schedule_rows
from app.realtime.store import REDIS_ERRORS, RedisBreaker, StoredBoard, read_board
from app.schedule import timetable
from app.schedule.queries import active_feed
from app.web.compression import COMPRESSIBLE, LEVEL, MIN_SIZE
from app.web.headers import security_headers

__all__ = [
    "CACHE_CONTROL",
    "MAX_LIMIT",
    "Answer",
    "BoardPolls",
    "Reply",
    "arrivals_answer",
    "arrivals_reply",
    "board_answer",
    "breaker",
    "compressed",
    "etag_matches",
    "fetch_board",
    "polled_stop",
]

log = logging.getLogger(__name__)

# Displays poll every few seconds; shared caches may hold an answer that long and must then revalidate.
CACHE_CONTROL = "public, max-age=5, must-revalidate"
MAX_LIMIT = 100  # of ?limit= on /arrivals
POLL_PREFIX = "/api/v1/stops/"
POLL_SUFFIX = "/arrivals"
_LIMIT_ONLY = re.compile(r"limit=([0-9]{1,3})")


@dataclass(frozen=True)
class Answer:
    """A stop's arrivals as JSON bytes, with their ETag and where they came from (``board`` or ``schedule``)."""

    body: bytes
    etag: str
    source: str


@dataclass(frozen=True)
class Reply:
    """The HTTP answer to ``/arrivals``, as the Flask view and ``BoardPolls`` both send it; the security headers
    are not in ``headers`` (Flask's hook adds them, or the middleware itself)."""

    status: int  # 200, or 304 when the client already holds the answer
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def status_line(self) -> str:
        return f"{self.status} {HTTPStatus(self.status).phrase}"


def breaker(app: Flask) -> RedisBreaker:
    found: RedisBreaker = app.extensions.setdefault("realtime_breaker", RedisBreaker())
    return found


def fetch_board(app: Flask, stop_id: str) -> StoredBoard | None:
    """The stop's board, or ``None`` when there is none or Redis cannot be reached right now."""
    guard = breaker(app)
    if guard.is_open:
        return None
    try:
        stored = read_board(get_redis(app), stop_id)
    except REDIS_ERRORS:
        log.warning("Redis unavailable; answering stop %s from the schedule", stop_id)
        guard.failed()
        return None
    guard.succeeded()
    return stored


def arrivals_reply(app: Flask, stop_id: str, *, at: dt.datetime | None, window: int, route: str | None,
                   limit: int, if_none_match: str | None, stored: StoredBoard | None = None) -> Reply:
    """The answer to ``/arrivals`` — 200 with the JSON body, or 304 when ``if_none_match`` names its ETag — for the
    Flask view and ``BoardPolls`` alike; ``stored`` is the stop's board when the caller has read it already."""
    answer = arrivals_answer(app, stop_id, at=at, window=window, route=route, limit=limit,
                             if_none_match=if_none_match, stored=stored)
    headers = [("ETag", answer.etag), ("Cache-Control", CACHE_CONTROL), ("X-Qala-Source", answer.source)]
    if etag_matches(if_none_match, answer.etag):
        return Reply(304, headers, b"")
    headers += [("Content-Type", "application/json"), ("Content-Length", str(len(answer.body)))]
    return Reply(200, headers, answer.body)


def arrivals_answer(app: Flask, stop_id: str, *, at: dt.datetime | None, window: int, route: str | None,
                    limit: int, if_none_match: str | None = None, stored: StoredBoard | None = None) -> Answer:
    """The stop's answer; with ``if_none_match`` naming a filtered board's ETag, the body is left empty (the
    client already holds it and gets a 304). Without ``at``, the board is ``stored`` or read from Redis."""
    if at is None and stored is None:
        stored = fetch_board(app, stop_id)
    if at is not None or stored is None:  # another instant than now, no board, or Redis away: the timetable
        return _schedule_answer(app, stop_id, at=at, window=window, route=route, limit=limit)
    return board_answer(stored, route=route, limit=limit, window=window,
                        full_window=app.config["ARRIVALS_WINDOW_MIN"], if_none_match=if_none_match)


def board_answer(stored: StoredBoard, *, route: str | None, limit: int, window: int, full_window: int,
                 if_none_match: str | None = None) -> Answer:
    """A stored board, filtered when asked. A filtered answer's ETag derives from the board's and the filters,
    so a client that holds it is told before any JSON is parsed (the body is then left empty)."""
    if route is None and limit >= BOARD_LIMIT and window >= full_window:
        return Answer(stored.body, stored.etag, "board")  # the stored bytes as they are: the fast path
    params = hashlib.blake2b(f"{route}|{limit}|{window}".encode(), digest_size=4).hexdigest()
    tag, _ = unquote_etag(stored.etag)
    etag = f'W/"{tag}-{params}"'
    if etag_matches(if_none_match, etag):
        return Answer(b"", etag, "board")
    payload = json.loads(stored.body)
    payload["arrivals"] = [
        a for a in payload["arrivals"]
        if (route is None or route in (a["route_id"], a["route_short_name"])) and a["minutes_away"] <= window
    ][:limit]
    return Answer(_dumps(payload), etag, "board")


def _schedule_answer(app: Flask, stop_id: str, *, at: dt.datetime | None, window: int, route: str | None,
                     limit: int) -> Answer:
    with get_db(app).session() as session:
        payload: dict[str, Any] = timetable.arrivals(session, app.extensions["service_calendars"], stop_id, at=at,
                                                     window_min=window, route=route, limit=limit)
        # rows with every key of a board's: a display reads both alike
        complete_schedule_rows(session, active_feed(session).id, ZoneInfo(payload["timezone"]), payload["arrivals"])
    payload.update(source="schedule", version=None, realtime=False)
    return Answer(_dumps(payload), content_etag(payload), "schedule")


def _dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag``, by weak comparison (RFC 9110 §13.1.2)."""
    if not if_none_match:
        return False
    if if_none_match == etag:  # a display sends back exactly the tag it was given: no header parsing needed
        return True
    tag, _ = unquote_etag(etag)  # lists of tags, "*", strong and weak spellings
    return tag is not None and parse_etags(if_none_match).contains_weak(tag)


def compressed(reply: Reply, accept_encoding: str | None, if_none_match: str | None) -> Reply:
    """``reply`` as Flask's compression hook (``app.web.compression``) leaves a view's answer: a JSON body of
    ``MIN_SIZE`` or more says ``Vary: Accept-Encoding`` and, for a client that takes gzip, is gzipped under its own
    ETag (``<etag>-gz``), which ``if_none_match`` may name for a 304, with the ``Date`` that the hook's
    conditional check adds."""
    headers = dict(reply.headers)
    if reply.status != 200 or len(reply.body) < MIN_SIZE or headers.get("Content-Type") not in COMPRESSIBLE:
        return reply
    vary = [*reply.headers, ("Vary", "Accept-Encoding")]
    if parse_accept_header(accept_encoding, Accept)["gzip"] <= 0:
        return Reply(200, vary, reply.body)
    tag, weak = unquote_etag(headers["ETag"])
    etag = quote_etag(f"{tag}-gz", weak=bool(weak))
    date = ("Date", http_date())
    kept = [(k, etag if k == "ETag" else v) for k, v in vary if k not in ("Content-Type", "Content-Length")]
    if etag_matches(if_none_match, etag):
        return Reply(304, [*kept, date], b"")
    body = _gzipped(reply.body)
    return Reply(200, [(k, etag if k == "ETag" else str(len(body)) if k == "Content-Length" else v)
                       for k, v in vary] + [("Content-Encoding", "gzip"), date], body)


# gzip of answer bodies by a digest of their bytes: every display and phone polling one stop within a cycle gets
# them compressed once (not by ETag: a content ETag leaves out generated_at, which the body carries); cleared whole
# when full, as boards turn over every cycle
_GZIPPED: dict[bytes, bytes] = {}
_GZIPPED_MAX = 2048


def _gzipped(body: bytes) -> bytes:
    key = hashlib.blake2b(body, digest_size=16).digest()
    found = _GZIPPED.get(key)
    if found is None:
        if len(_GZIPPED) >= _GZIPPED_MAX:
            _GZIPPED.clear()
        found = _GZIPPED[key] = gzip.compress(body, compresslevel=LEVEL, mtime=0)
    return found


def polled_stop(environ: dict[str, Any]) -> tuple[str, int] | None:
    """The stop and ``limit`` of a displays' poll — ``GET /api/v1/stops/<stop_id>/arrivals`` with no query
    string or only ``limit=<n>`` (what /display/<stop_id> sends) — else ``None``."""
    if environ.get("REQUEST_METHOD") != "GET":
        return None
    limit = _poll_limit(environ.get("QUERY_STRING", ""))
    path: str = environ.get("PATH_INFO", "")
    if limit is None or not (path.startswith(POLL_PREFIX) and path.endswith(POLL_SUFFIX)):
        return None
    raw = path[len(POLL_PREFIX):-len(POLL_SUFFIX)]
    if not raw or "/" in raw or raw != raw.strip():
        return None  # Flask routes, strips and checks these (or answers 404/400)
    try:
        return raw.encode("latin-1").decode(), limit  # WSGI carries the path's UTF-8 bytes as latin-1 text
    except UnicodeError:
        log.debug("a poll path that is not UTF-8 goes to Flask: %r", path)
        return None


def _poll_limit(query: str) -> int | None:
    if not query:
        return BOARD_LIMIT
    found = _LIMIT_ONLY.fullmatch(query)
    if found is None or not 1 <= int(found[1]) <= MAX_LIMIT:
        return None  # other parameters, or a limit Flask answers with a 400
    return int(found[1])


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class BoardPolls:
    """WSGI middleware in front of Flask for the displays' poll of a stop that has a board in Redis.

    It answers with the stored bytes, the board cut to ``limit`` rows, or 304 — ``arrivals_reply``, as the Flask
    view does, plus the security headers Flask would add — after one Redis round trip, without a Flask request
    context, session, routing or parameter parsing. Everything else goes to Flask unchanged: other paths and
    methods, any other query parameter, a stop without a board, Redis unreachable (the breaker is shared, so Flask
    then answers from the timetable without trying Redis again), and an unexpected error (logged with its
    traceback; Flask answers, with its error handlers if the view fails too).
    """

    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.app = app
        self.next = wsgi_app
        self.full_window = int(app.config["ARRIVALS_WINDOW_MIN"])
        # what Flask's responses carry (app/web/headers.py)
        self.security = security_headers(app.config, page=False)
        self.security_304 = security_headers(app.config, page=None)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        poll = polled_stop(environ)
        if poll is None:
            return self.next(environ, start_response)
        stop_id, limit = poll
        try:
            reply = self._reply(stop_id, limit, environ.get("HTTP_IF_NONE_MATCH"), environ.get("HTTP_ACCEPT_ENCODING"))
        except Exception:  # a bug or an outage the view may meet too: Flask answers, with its error handlers
            log.exception("the board poll of stop %r failed before Flask; Flask answers it", stop_id)
            return self.next(environ, start_response)
        if reply is None:
            log.debug("no board for stop %r (none published, or Redis away): Flask answers the poll", stop_id)
            return self.next(environ, start_response)
        start_response(reply.status_line, [*reply.headers, *(self.security_304 if reply.status == 304
                                                              else self.security)])
        return [reply.body]

    def _reply(self, stop_id: str, limit: int, if_none_match: str | None,
               accept_encoding: str | None) -> Reply | None:
        stored = fetch_board(self.app, stop_id)
        if stored is None:
            return None
        reply = arrivals_reply(self.app, stop_id, at=None, window=self.full_window, route=None, limit=limit,
                               if_none_match=if_none_match, stored=stored)
        return compressed(reply, accept_encoding, if_none_match)
