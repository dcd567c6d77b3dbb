"""The publisher: boards and GTFS-rt snapshots into Redis in pipelined batches, a pub/sub message per changed stop.

Every publish rewrites each given board (refreshing its TTL and ``generated_at``) under a new version from
one Redis counter, so several publishers never reuse a version; only boards whose content ETag changed since
this publisher last wrote them are announced on their stop's channel.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.realtime.boards import Board, content_etag
from app.realtime.store import VERSION_KEY, board_channel, board_key, snapshot_key

__all__ = ["BoardPublisher", "PublishResult"]


@dataclass(frozen=True)
class PublishResult:
    version: int
    written: int
    changed: int


class BoardPublisher:
    """Writes boards for one Redis; keep one instance per worker so unchanged boards are not re-announced."""

    def __init__(self, client: Any, *, ttl_s: int = 90, batch_size: int = 500) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.batch_size = batch_size
        self._announced: dict[str, str] = {}

    def publish(self, boards: Sequence[Board]) -> PublishResult:
        """Store ``boards`` and announce the changed ones; returns the version they carry."""
        version = int(self.client.incr(VERSION_KEY))
        changed = 0
        for start in range(0, len(boards), self.batch_size):
            pipe = self.client.pipeline(transaction=False)
            for board in boards[start:start + self.batch_size]:
                changed += self._queue_board(pipe, board, version)
            pipe.execute()
        return PublishResult(version=version, written=len(boards), changed=changed)

    def _queue_board(self, pipe: Any, board: Board, version: int) -> int:
        payload = board.payload(version)
        etag = content_etag(payload)
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        key = board_key(board.stop_id)
        pipe.hset(key, mapping={"json": body, "etag": etag, "version": version})
        pipe.expire(key, self.ttl_s)
        if self._announced.get(board.stop_id) == etag:
            return 0
        self._announced[board.stop_id] = etag
        pipe.publish(board_channel(board.stop_id), etag)
        return 1

    def publish_snapshot(self, feed: str, body: bytes, timestamp: dt.datetime, *, ttl_s: int | None = None) -> None:
        """Store a GTFS-rt snapshot (``trip-updates`` or ``vehicle-positions``)."""
        key = snapshot_key(feed)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(key, mapping={"pb": body, "timestamp": int(timestamp.timestamp())})
        pipe.expire(key, ttl_s or self.ttl_s)
        pipe.execute()
