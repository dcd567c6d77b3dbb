"""When a tap may be dated: absolute bounds for any ``tapped_at``, and the windows of online and offline taps.

An online tap happens now: one dated further than ``online_skew`` from the server clock is refused (400; a tap
from 1990 or 2030 is neither a tap nor a clock error a validator should be charged by). An offline tap may be late
by up to ``offline_max_age`` (a validator's flash holds about a month of taps) and early by ``online_skew``;
outside that window a batch stores it denied (``tap_time_out_of_range``) and charges nothing
(``app.ticketing.batches.apply_batch``), so its sequence number still counts as arrived. Any ``tapped_at`` outside
2000–2099 — or one that overflows on conversion to UTC, like ``0001-01-01T00:00+05:00`` — is a 400, never a 500.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.errors import BadRequest

__all__ = ["EARLIEST_TAP", "LATEST_TAP", "TapClock", "parse_tapped_at"]

EARLIEST_TAP = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST_TAP = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class TapClock:
    """The server clock and the two windows (``None``: unchecked, configured as 0)."""

    now: dt.datetime
    online_skew: dt.timedelta | None
    offline_max_age: dt.timedelta | None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], now: dt.datetime | None = None) -> TapClock:
        skew = int(config["TAP_ONLINE_SKEW_S"])
        age = int(config["TAP_OFFLINE_MAX_AGE_S"])
        return cls(now or dt.datetime.now(dt.UTC), dt.timedelta(seconds=skew) if skew > 0 else None,
                   dt.timedelta(seconds=age) if age > 0 else None)

    def check_online(self, at: dt.datetime) -> None:
        """``BadRequest`` naming ``tapped_at`` when an online tap is not dated about now."""
        if self.online_skew is not None and abs(at - self.now) > self.online_skew:
            raise BadRequest(f"an online tap's tapped_at must be within {int(self.online_skew.total_seconds())} s "
                             "of the server clock (send older taps in a batch)", field="tapped_at")

    def offline_window(self) -> tuple[dt.datetime, dt.datetime] | None:
        """(first, last) time an offline tap may carry; ``None`` when both windows are off."""
        if self.online_skew is None and self.offline_max_age is None:
            return None
        return (self.now - self.offline_max_age if self.offline_max_age else EARLIEST_TAP,
                self.now + self.online_skew if self.online_skew else LATEST_TAP)


def parse_tapped_at(raw: str) -> dt.datetime:
    """An aware UTC time from ISO-8601 with an offset, between ``EARLIEST_TAP`` and ``LATEST_TAP``; ``BadRequest``
    naming ``tapped_at`` otherwise."""
    try:
        at = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest("tapped_at must be ISO-8601 with a UTC offset", field="tapped_at") from None
    if at.utcoffset() is None:
        raise BadRequest("tapped_at must include a UTC offset", field="tapped_at")
    try:
        at = at.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01 east of UTC, 9999-12-31 west of it
        at = EARLIEST_TAP - dt.timedelta(days=1)  # refused just below
    if not EARLIEST_TAP <= at < LATEST_TAP:
        raise BadRequest(f"tapped_at must be between {EARLIEST_TAP.year} and {LATEST_TAP.year - 1}",
                         field="tapped_at")
    return at
