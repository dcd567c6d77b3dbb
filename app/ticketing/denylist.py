"""The deny list: versioned changes in the database, served to validators from Redis by delta.

Writers serialise on a transaction-scoped advisory lock (PostgreSQL), so versions become visible in
order and a validator that synced to version ``v`` can never miss a smaller one committed later.
Redis holds the changes in a sorted set scored by version; a reader that finds Redis behind the
database (or empty, e.g. after a restart) appends the missing rows from the database first. While Redis
is unreachable the changes are read from the database (the same rows: Redis only spares the query).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.cache import REDIS_UNREACHABLE, RedisClient, key
from app.models import Card, DenyListEntry

__all__ = ["changes_since", "is_denied", "set_denied"]

log = logging.getLogger(__name__)

_LOCK_ID = 7_301_001  # pg_advisory_xact_lock id of deny-list writers
REDIS_KEY = key("denylist")


def is_denied(session: Session, card_id: int) -> bool:
    last = session.scalar(select(DenyListEntry.action).where(DenyListEntry.card_id == card_id)
                          .order_by(DenyListEntry.version.desc()).limit(1))
    return last == "add"


def set_denied(session: Session, card: Card, denied: bool, reason: str) -> bool:
    """Add the card to (or remove it from) the deny list; returns whether anything changed."""
    if is_denied(session, card.id) == denied:
        return False  # the common case takes no lock
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        if is_denied(session, card.id) == denied:
            return False
    session.add(DenyListEntry(card_id=card.id, card_hash=card.number_hash, action="add" if denied else "remove",
                              reason=reason))
    session.flush()
    return True


def _entry(entry: DenyListEntry) -> dict[str, Any]:
    return {"version": entry.version, "card": entry.card_hash, "action": entry.action, "reason": entry.reason}


def _entry_json(entry: DenyListEntry) -> str:
    return json.dumps(_entry(entry), separators=(",", ":"))


def _sync_redis(session: Session, redis: RedisClient, db_version: int) -> None:
    newest = redis.zrevrange(REDIS_KEY, 0, 0, withscores=True)
    cached = int(newest[0][1]) if newest else 0
    if cached >= db_version:
        return
    rows = session.scalars(select(DenyListEntry).where(DenyListEntry.version > cached)
                           .order_by(DenyListEntry.version)).all()
    if rows:
        redis.zadd(REDIS_KEY, {_entry_json(row): row.version for row in rows})


def changes_since(session: Session, redis: RedisClient, since: int) -> dict[str, Any]:
    """Changes with version > ``since`` (oldest first) and the current version."""
    db_version = session.scalar(select(func.coalesce(func.max(DenyListEntry.version), 0))) or 0
    if db_version <= since:
        return {"version": db_version, "changes": []}
    try:
        _sync_redis(session, redis, db_version)
        raw = redis.zrangebyscore(REDIS_KEY, f"({since}", db_version)
    except REDIS_UNREACHABLE as exc:
        log.warning("Redis unavailable, deny list read from the database: %s", exc)
        rows = session.scalars(select(DenyListEntry).where(DenyListEntry.version > since,
                                                           DenyListEntry.version <= db_version)
                               .order_by(DenyListEntry.version)).all()
        return {"version": db_version, "changes": [_entry(row) for row in rows]}
    # without withscores the members are plain strings, but redis-py types the (member, score) pairs in too
    return {"version": db_version, "changes": [json.loads(item) for item in raw]}  # type: ignore[arg-type]
