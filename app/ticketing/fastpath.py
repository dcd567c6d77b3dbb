"""The online tap in one database round trip (PostgreSQL): the ``qala_online_taps`` function (its current source
is ``app/ticketing/sql/qala_online_taps.sql``, see ``app.ticketing.ledger``; migration 0013 created it).

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
(``app.ticketing.coalesce``): one ``qala_online_taps`` call applies the group in one
transaction, so one round trip and one commit serve every tap of the group, each tap with the same rules and
its own outcome (a declined tap goes to the general path alone). A request answers only after the group's
commit, so an acknowledged tap is durable; if the call fails (a lost connection, a deadlock) every tap of the
group takes the general path, where its key dedupes a group that did commit.

Nonces: a validator request's nonce must be claimed (Redis ``SET NX``) before the tap is applied. The WSGI fast
path (``app.api.validators.FastTaps``) hands the nonce to ``apply`` instead of claiming it alone, and the group
claims its nonces in one Redis pipeline just before its database call: one hand-off between threads and one
Redis round trip per group rather than per request. The same pipeline reads the nonce epoch
(``app.ticketing.devices``), so a request signed before Redis last lost its data is refused here too. A tap
whose nonce was taken (or signed before the epoch) gets nothing written and ``Unauthorized``; if Redis fails,
``apply`` raises and nothing was written.

Connection: one psycopg connection per process, in autocommit, reopened after a failure — only a group's
leader uses it, and one group runs at a time. (One per thread, as before, opened up to 64 connections per
process at 32 threads: two servers of two processes ran PostgreSQL out of its 100.) The SQLAlchemy pool
would ping each checkout (``pool_pre_ping``), one more round trip.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from app.ticketing.coalesce import Coalescer
from app.ticketing.devices import Claim, NonceClaims
from app.ticketing.errors import Unauthorized
from app.ticketing.fares import FareProfile, flat_categories, rating_window

__all__ = ["GROUP_CALL", "FastPath", "FlatPrices", "flat_prices", "group_params"]

GROUP_CALL = "SELECT r_i, r_outcome, r_reason, r_fare, r_balance, r_product FROM qala_online_taps(%s, %s)"
MAX_GROUP = 32  # taps per group: bounds how long a group holds its cards' locks

Outcome = tuple[str, str | None, int, int, str | None]
Nonce = tuple[NonceClaims, Claim]  # who claims it, and its key with the request's signed timestamp
Item = tuple[dict[str, Any], "FlatPrices", Nonce | None]


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
        self._conn: Any = None  # only a group's leader uses it, and the coalescer runs one group at a time
        self._prices = _PriceCache()
        self._lock = threading.Lock()
        self.group = Coalescer(self._apply_group, MAX_GROUP)

    def _connection(self) -> Any:
        import psycopg

        conn = self._conn
        if conn is None or conn.closed:
            conn = self._conn = psycopg.connect(self.conninfo, autocommit=True)
        return conn

    def connection(self) -> Any:
        """The process's fast-path connection (tests trace its protocol messages)."""
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
              card_hash: str, vehicle_id: str, route_id: str | None, tapped_at: dt.datetime,
              nonce: Nonce | None = None) -> Outcome | None:
        """(outcome, reason, fare, balance, product) of an applied tap, or ``None`` (nothing was written).

        With ``nonce``, the request's nonce is claimed first (with the group's others): ``Unauthorized`` when it
        was taken or signed before the nonce epoch; any other exception means the nonce may be unclaimed. A
        returned value (``None`` too) means the nonce is now this request's."""
        prices = self.prices(profile, route_id, tapped_at)
        if prices is None:
            refused = nonce[0].claim(nonce[1]) if nonce is not None else None
            if refused is not None:
                raise refused
            return None
        start, end = rating_window(profile, tapped_at)
        tap = {"k": tap_key, "d": device_id, "s": device_seq, "b": body_hash, "c": card_hash, "v": vehicle_id,
               "r": route_id, "t": tapped_at.isoformat(), "ws": start.isoformat(), "we": end.isoformat(),
               "dt": profile.config.double_tap_s}
        try:
            got = self.group.submit((tap, prices, nonce))
        except Exception:  # the group failed as a whole
            if nonce is not None:  # its nonces may not be claimed: the caller must not act on the request
                raise
            return None  # the general path takes each of its taps
        if isinstance(got, Unauthorized):  # its nonce was refused
            raise got
        return got

    def _apply_group(self, items: list[Item]) -> list[Outcome | Unauthorized | None]:
        """Claim the group's nonces (one pipeline per claimer), then one round trip and one commit for the taps
        whose nonce was new; per tap an outcome, the nonce's refusal, or ``None`` (declined or failed: nothing
        written, the general path takes it)."""
        import psycopg

        out: list[Outcome | Unauthorized | None] = [None] * len(items)
        claimers: dict[int, tuple[NonceClaims, list[int], list[Claim]]] = {}
        for i, (_, _, nonce) in enumerate(items):
            if nonce is not None:
                _, positions, keys = claimers.setdefault(id(nonce[0]), (nonce[0], [], []))
                positions.append(i)
                keys.append(nonce[1])
        for claims, positions, keys in claimers.values():
            for i, refused in zip(positions, claims.claim_all(keys), strict=True):
                out[i] = refused
        run = [i for i in range(len(items)) if out[i] is None]
        if not run:
            return out
        conn = self._connection()
        try:
            rows = conn.execute(GROUP_CALL, group_params([items[i][:2] for i in run])).fetchall()
        except psycopg.Error:  # a lost connection, a deadlock: the general path takes each tap (its key dedupes)
            if conn.broken or conn.closed:
                self.close()
            return out
        for i, outcome, reason, fare, balance, product in rows:
            if outcome is not None:
                out[run[i - 1]] = (str(outcome), reason, int(fare), int(balance), product)
        return out

    def close(self) -> None:
        """Close the connection (after an error, or when an application is dropped); the next group reconnects."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
