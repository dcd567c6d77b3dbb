"""The online tap in one database round trip (PostgreSQL): the ``qala_online_taps`` function of migration 0013.

Why: on a 2-core machine every statement, BEGIN and COMMIT costs a round trip and CPU on both sides; the
common online tap (an active card, a flat fare, no pass, not near another ride) needs no fare-engine state
from the database, so the fare is priced in Python *before* the call and the function does lock, dedupe,
balance check, tap, charge and both entries as one statement (the one-tap ``qala_online_tap`` of migration
0008, which did this for a single tap, is no longer called). Everything else — unknown or
blocked cards, repeats of a tap key, a ride within ``double_tap_s`` of another, a tap that is not the
card's latest, an active pass, a category whose fare depends on earlier rides (caps, transfers) — makes
the function return no outcome without writing anything, and the caller takes the general path
(``app.ticketing.taps.process_tap``), where the fare engine rates the whole window.

Flat means the engine's answer is the leg price whatever the card did earlier (``fares.flat_categories``),
so the two paths agree by construction; ``tests/test_ticketing_taps.py`` checks them against each other.

Group commit: concurrent online taps of one worker process go to the database together
(``app.ticketing.coalesce``): one ``qala_online_taps`` call (migration 0013) applies the group in one
transaction, so one round trip and one commit serve every tap of the group, each tap with the same rules and
its own outcome (a declined tap goes to the general path alone). A request answers only after the group's
commit, so an acknowledged tap is durable; if the call fails (a lost connection, a deadlock) every tap of the
group takes the general path, where its key dedupes a group that did commit.

Connections: one psycopg connection per worker thread (the group's leader uses its own), in autocommit,
reopened after a failure. The SQLAlchemy pool would ping each checkout (``pool_pre_ping``), one more round trip.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from app.ticketing.coalesce import Coalescer
from app.ticketing.fares import FareProfile, flat_categories, rating_window

__all__ = ["GROUP_CALL", "FastPath", "FlatPrices", "flat_prices", "group_params"]

GROUP_CALL = "SELECT r_i, r_outcome, r_reason, r_fare, r_balance, r_product FROM qala_online_taps(%s, %s)"
MAX_GROUP = 32  # taps per group: bounds how long a group holds its cards' locks

Outcome = tuple[str, str | None, int, int, str | None]


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


def group_params(taps: list[tuple[dict[str, Any], FlatPrices]]) -> tuple[str, str]:
    """The two JSON parameters of ``qala_online_taps``: the taps, and their price sets (shared by identity)."""
    sets: dict[int, str] = {}
    prices: dict[str, dict[str, list[Any]]] = {}
    rows = []
    for tap, flat in taps:
        ref = sets.get(id(flat))
        if ref is None:
            ref = sets[id(flat)] = str(len(sets))
            prices[ref] = {c: [p, a] for c, p, a in zip(flat.categories, flat.products, flat.prices, strict=True)}
        rows.append({**tap, "p": ref})
    return json.dumps(rows), json.dumps(prices)


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
        self.group = Coalescer(self._apply_group, MAX_GROUP)

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
        prices = self.prices(profile, route_id, tapped_at)
        if prices is None:
            return None
        start, end = rating_window(profile, tapped_at)
        tap = {"k": tap_key, "d": device_id, "s": device_seq, "b": body_hash, "c": card_hash, "v": vehicle_id,
               "r": route_id, "t": tapped_at.isoformat(), "ws": start.isoformat(), "we": end.isoformat(),
               "dt": profile.config.double_tap_s}
        try:
            return self.group.submit((tap, prices))
        except Exception:  # the group failed as a whole: the general path takes each of its taps
            return None

    def _apply_group(self, taps: list[tuple[dict[str, Any], FlatPrices]]) -> list[Outcome | None]:
        """One round trip and one commit for the group; an outcome per tap (``None``: declined, nothing written)."""
        import psycopg

        conn = self._connection()
        try:
            rows = conn.execute(GROUP_CALL, group_params(taps)).fetchall()
        except psycopg.Error:
            if conn.broken or conn.closed:
                self.close()
            raise
        out: list[Outcome | None] = [None] * len(taps)
        for i, outcome, reason, fare, balance, product in rows:
            if outcome is not None:
                out[i - 1] = (str(outcome), reason, int(fare), int(balance), product)
        return out

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
