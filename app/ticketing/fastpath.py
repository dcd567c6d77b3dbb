"""The online tap in one database round trip (PostgreSQL): the ``qala_online_tap`` function of migration 0007.

Why: on a 2-core machine every statement, BEGIN and COMMIT costs a round trip and CPU on both sides; the
common online tap (an active card, a flat fare, no pass, not near another ride) needs no fare-engine state
from the database, so the fare is priced in Python *before* the call and the function does lock, dedupe,
balance check, tap, charge and both entries as one autocommitted statement. Everything else — unknown or
blocked cards, repeats of a tap key, a ride within ``double_tap_s`` of another, a tap that is not the
card's latest, an active pass, a category whose fare depends on earlier rides (caps, transfers) — makes
the function return no outcome without writing anything, and the caller takes the general path
(``app.ticketing.taps.process_tap``), where the fare engine rates the whole window.

Flat means the engine's answer is the leg price whatever the card did earlier (``fares.flat_categories``),
so the two paths agree by construction; ``tests/test_ticketing_taps.py`` checks them against each other.

Connections: one psycopg connection per worker thread, in autocommit, reopened after a failure. The
SQLAlchemy pool would ping each checkout (``pool_pre_ping``), one more round trip per tap.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

from app.ticketing.fares import FareProfile, flat_categories, rating_window

__all__ = ["FastPath", "FlatPrices", "flat_prices"]

CALL = ("SELECT r_outcome, r_reason, r_fare, r_balance, r_product FROM qala_online_tap("
        "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")


@dataclass(frozen=True)
class FlatPrices:
    """Leg price and product per flat rider category for one route (and time, when timeframes exist)."""

    categories: list[str]
    products: list[str]
    prices: list[int]


@dataclass
class _PriceCache:
    profile: FareProfile | None = None
    flat: frozenset[str] = frozenset()
    by_route: dict[str | None, FlatPrices | None] = field(default_factory=dict)


def flat_prices(profile: FareProfile, route_id: str | None, at: dt.datetime) -> FlatPrices | None:
    """Prices of the profile's flat categories for a ride; ``None`` when no category is flat or none prices."""
    cats, products, prices = [], [], []
    for category in sorted(flat_categories(profile)):
        try:
            product, amount, _ = profile.leg_price(category, route_id, at)
        except LookupError:
            continue
        cats.append(category)
        products.append(product)
        prices.append(amount)
    return FlatPrices(cats, products, prices) if cats else None


class FastPath:
    """The one-round-trip online tap for one process; ``apply`` returns ``None`` when the general path must run."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._local = threading.local()
        self._prices = _PriceCache()
        self._lock = threading.Lock()
        self._all: list[Any] = []

    def _connection(self) -> Any:
        import psycopg

        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self.conninfo, autocommit=True)
            self._local.conn = conn
            with self._lock:
                self._all = [c for c in self._all if not c.closed] + [conn]
        return conn

    def connection(self) -> Any:
        """This thread's connection (tests trace its protocol messages)."""
        return self._connection()

    def prices(self, profile: FareProfile, route_id: str | None, at: dt.datetime) -> FlatPrices | None:
        """Remembered per route for the current profile (per call when the profile has timeframes)."""
        if profile.timeframes:
            return flat_prices(profile, route_id, at)
        cache = self._prices
        if cache.profile is not profile:
            with self._lock:
                cache = self._prices = _PriceCache(profile, flat_categories(profile))
        if route_id not in cache.by_route:
            cache.by_route[route_id] = flat_prices(profile, route_id, at)
        return cache.by_route[route_id]

    def apply(self, profile: FareProfile, *, tap_key: str, device_id: str, device_seq: int, body_hash: str,
              card_hash: str, vehicle_id: str, route_id: str | None,
              tapped_at: dt.datetime) -> tuple[str, str | None, int, int, str | None] | None:
        """(outcome, reason, fare, balance, product) of an applied tap, or ``None`` (nothing was written)."""
        import psycopg

        prices = self.prices(profile, route_id, tapped_at)
        if prices is None:
            return None
        start, end = rating_window(profile, tapped_at)
        params = (tap_key, device_id, device_seq, body_hash, card_hash, vehicle_id, route_id, tapped_at, start, end,
                  profile.config.double_tap_s, prices.categories, prices.products, prices.prices)
        try:
            row = self._connection().execute(CALL, params).fetchone()
        except psycopg.errors.UniqueViolation:
            return None  # the tap key arrived concurrently with another body: the general path says 409
        except psycopg.OperationalError:
            self.close()
            return None  # the general path retries on a fresh pooled connection; the tap key dedupes
        if row is None or row[0] is None:
            return None
        return str(row[0]), row[1], int(row[2]), int(row[3]), row[4]

    def close_all(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()

    def close(self) -> None:
        """Close this thread's connection (after an error; the next call reconnects)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                conn.close()
            finally:
                self._local.conn = None
