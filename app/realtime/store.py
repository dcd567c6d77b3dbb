"""Where boards and GTFS-rt snapshots live in Redis, and how readers get them without failing when Redis is down.

    qala:board:<stop_id>          hash {json, etag, version}, expires after the board TTL
    qala:board-changed:<stop_id>  pub/sub channel; the message is the new ETag
    qala:boards:version           counter, one increment per publish
    qala:gtfs-rt:<feed>           hash {pb, timestamp} for trip-updates / vehicle-positions
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from app.cache import RedisClient, key

__all__ = [
    "REDIS_ERRORS",
    "VERSION_KEY",
    "RedisBreaker",
    "Snapshot",
    "StoredBoard",
    "board_channel",
    "board_key",
    "read_board",
    "read_snapshot",
    "snapshot_key",
]

# What a lost, refused or timed-out Redis raises; readers answer from the schedule on these.
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
VERSION_KEY = key("boards", "version")


def board_key(stop_id: str) -> str:
    return key("board", stop_id)


def board_channel(stop_id: str) -> str:
    return key("board-changed", stop_id)


def snapshot_key(feed: str) -> str:
    return key("gtfs-rt", feed)


@dataclass(frozen=True)
class StoredBoard:
    body: bytes
    etag: str
    version: int


@dataclass(frozen=True)
class Snapshot:
    body: bytes
    timestamp: int


def read_board(client: RedisClient, stop_id: str) -> StoredBoard | None:
    body, etag, version = client.hmget(board_key(stop_id), ["json", "etag", "version"])
    if body is None or etag is None:
        return None
    # the client keeps raw replies (no decode_responses): redis-py types a field as bytes | str
    return StoredBoard(bytes(body), etag.decode() if isinstance(etag, bytes) else str(etag),  # type: ignore[arg-type]
                       int(version or 0))


def read_snapshot(client: RedisClient, feed: str) -> Snapshot | None:
    body, timestamp = client.hmget(snapshot_key(feed), ["pb", "timestamp"])
    if body is None:
        return None
    return Snapshot(bytes(body), int(timestamp or 0))  # type: ignore[arg-type]  # bytes, as in read_board


class RedisBreaker:
    """Skip Redis for ``cooldown_s`` after it failed, so a dead server costs one timeout, not one per request.

    Recovery needs nothing: the first call after the cool-down tries Redis again (redis-py reconnects).
    """

    def __init__(self, cooldown_s: float = 2.0) -> None:
        self.cooldown_s = cooldown_s
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def failed(self) -> None:
        self._open_until = time.monotonic() + self.cooldown_s

    def succeeded(self) -> None:
        self._open_until = 0.0
