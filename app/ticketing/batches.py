"""Offline batches: each tap is applied in its own transaction (deduped with its charge); gaps are reported."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app.models import Tap
from app.ticketing.context import Ticketing
from app.ticketing.errors import Conflict
from app.ticketing.taps import TapRequest, process_tap

__all__ = ["apply_batch", "sequence_gaps"]

MAX_GAPS = 100
ATTEMPTS = 3


def sequence_gaps(session: Session, device_id: str) -> list[list[int]]:
    """Missing ``[first, last]`` ranges of the device's sequence numbers (1-based), oldest first."""
    prev = func.lag(Tap.device_seq).over(order_by=Tap.device_seq)
    inner = select(Tap.device_seq.label("seq"), prev.label("prev")).where(Tap.device_id == device_id).subquery()
    rows = session.execute(select(inner.c.prev, inner.c.seq)
                           .where(inner.c.seq - func.coalesce(inner.c.prev, 0) > 1)
                           .order_by(inner.c.seq).limit(MAX_GAPS)).all()
    return [[int(p or 0) + 1, int(s) - 1] for p, s in rows]


def apply_batch(new_session: Callable[[], Session], ctx: Ticketing,
                requests: Sequence[TapRequest]) -> list[dict[str, Any]]:
    """Apply taps one transaction each, in tap-time order; a repeat returns its stored result."""
    results: dict[str, dict[str, Any]] = {}
    for req in sorted(requests, key=lambda r: (r.tapped_at, r.device_seq)):
        results[req.tap_key] = _apply_one(new_session, ctx, req)
    return [results[req.tap_key] for req in requests]


def _apply_one(new_session: Callable[[], Session], ctx: Ticketing, req: TapRequest) -> dict[str, Any]:
    for attempt in range(ATTEMPTS):
        with new_session() as session:
            try:
                result = process_tap(session, ctx, req)
                session.commit()
                return result.as_json()
            except Conflict as exc:
                return {"tap_key": req.tap_key, "device_seq": req.device_seq, "decision": "conflict",
                        "reason": exc.message}
            except (IntegrityError, OperationalError):
                session.rollback()
                if attempt == ATTEMPTS - 1:
                    raise
    raise AssertionError("unreachable")
