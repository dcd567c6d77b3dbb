"""Server-sent events for one stop's board: the board on connect, again on each pub/sub change, heartbeats between.

If Redis goes away the stream keeps going on the timetable (re-checked every heartbeat) and resubscribes
once Redis is back. A stream ends after ``max_s``; EventSource reconnects by itself (``retry``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask

from app.extensions import get_redis
from app.realtime.build import BOARD_LIMIT
from app.realtime.serving import Answer, arrivals_answer, breaker
from app.realtime.store import REDIS_ERRORS, board_channel

__all__ = ["RETRY_MS", "board_events", "first_answer"]

RETRY_MS = 3000


class _Subscription:
    """A pub/sub subscription to one channel that survives Redis restarts."""

    def __init__(self, app: Flask, channel: str) -> None:
        self.app = app
        self.channel = channel
        self.pubsub: Any = None

    def open(self) -> None:
        if self.pubsub is not None or breaker(self.app).is_open:
            return
        try:
            pubsub = get_redis(self.app).pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(self.channel)
            self.pubsub = pubsub
        except REDIS_ERRORS:
            breaker(self.app).failed()

    def wait(self, timeout: float) -> bool:
        """True when a change was announced within ``timeout`` seconds."""
        if self.pubsub is None:
            time.sleep(timeout)
            return False
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                if self.pubsub.get_message(timeout=left) is not None:
                    return True
        except REDIS_ERRORS:
            self.close()
        return False

    def close(self) -> None:
        if self.pubsub is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                self.pubsub.close()
            self.pubsub = None


def first_answer(app: Flask, stop_id: str) -> Answer:
    """The board now; raises ``NotFound`` for an unknown stop before any stream starts."""
    return arrivals_answer(app, stop_id, at=None, window=app.config["ARRIVALS_WINDOW_MIN"], route=None,
                           limit=BOARD_LIMIT)


def _event(answer: Answer) -> str:
    return f"event: board\nid: {answer.etag}\ndata: {answer.body.decode()}\n\n"


def board_events(app: Flask, stop_id: str, *, heartbeat_s: float, max_s: float) -> Iterator[str]:
    subscription = _Subscription(app, board_channel(stop_id))
    subscription.open()  # subscribed before the first board is read, so no change falls in between
    yield f"retry: {RETRY_MS}\n\n"
    answer = first_answer(app, stop_id)
    yield _event(answer)
    sent = answer.etag
    deadline = time.monotonic() + max_s
    try:
        while time.monotonic() < deadline:
            changed = subscription.wait(heartbeat_s)
            if not changed:
                yield f": heartbeat {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}\n\n"
            subscription.open()
            answer = first_answer(app, stop_id)
            if answer.etag != sent:
                yield _event(answer)
                sent = answer.etag
    finally:
        subscription.close()
