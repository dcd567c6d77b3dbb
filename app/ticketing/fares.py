"""The fare engine: pure code over dataclasses (no I/O), configured by GTFS Fares v2 rows plus a project config.

``rate(profile, category, taps, passes)`` prices a card's taps of one rating window in tap-time order, so
the result depends only on the set of taps, never on the order in which they reached the server. It applies,
in order: double taps (same vehicle within ``double_tap_s``), period passes with anti-passback, the leg price
for the rider category and time of day, Fares v2 transfer rules, and daily/weekly caps.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = [
    "FareProduct",
    "FareProfile",
    "LegRule",
    "PassIn",
    "ProjectConfig",
    "RatedTap",
    "TapIn",
    "TimeframeRow",
    "TransferRule",
    "flat_categories",
    "rate",
    "rating_window",
]

Outcome = Literal["accepted", "double_tap", "denied"]


@dataclass(frozen=True)
class FareProduct:
    """A row of ``fare_products.txt``; ``amount`` in tiyn."""

    product_id: str
    amount: int
    rider_category_id: str | None = None
    fare_media_id: str | None = None


@dataclass(frozen=True)
class LegRule:
    """A row of ``fare_leg_rules.txt`` (areas are not used: a bus tap has no tap-off)."""

    product_id: str
    leg_group_id: str | None = None
    network_id: str | None = None
    from_timeframe_group_id: str | None = None
    rule_priority: int | None = None


@dataclass(frozen=True)
class TransferRule:
    """A row of ``fare_transfer_rules.txt``; ``duration_limit`` in seconds."""

    fare_transfer_type: int
    from_leg_group_id: str | None = None
    to_leg_group_id: str | None = None
    transfer_count: int | None = None
    duration_limit: int | None = None
    product_id: str | None = None


@dataclass(frozen=True)
class TimeframeRow:
    """A row of ``timeframes.txt``: seconds since local midnight, end exclusive."""

    timeframe_group_id: str
    start_s: int
    end_s: int


@dataclass(frozen=True)
class ProjectConfig:
    """What Fares v2 cannot say: caps per rider category, pass validity, debt limit and tap rules."""

    name: str
    timezone: str = "Asia/Almaty"
    fare_media_id: str | None = "onay_card"
    pass_days: Mapping[str, int] = field(default_factory=dict)
    daily_cap: Mapping[str, int] = field(default_factory=dict)
    weekly_cap: Mapping[str, int] = field(default_factory=dict)
    debt_limit_fares: int = 1
    transfer_window_from: Literal["first", "last"] = "first"
    double_tap_s: int = 2
    passback_s: int = 300


@dataclass(frozen=True)
class FareProfile:
    """Everything the engine needs: the feed's Fares v2 rows and the project config."""

    config: ProjectConfig
    default_category: str
    categories: tuple[str, ...]
    products: tuple[FareProduct, ...]
    leg_rules: tuple[LegRule, ...]
    transfer_rules: tuple[TransferRule, ...] = ()
    timeframes: tuple[TimeframeRow, ...] = ()
    route_networks: Mapping[str, str] = field(default_factory=dict)
    # leg prices by (category, route) when the profile has no timeframes (the price then ignores the time)
    _legs: dict[tuple[str, str | None], tuple[str, int, str | None]] = field(
        default_factory=dict, compare=False, repr=False)

    def product_amount(self, product_id: str, category: str) -> int | None:
        """The price of ``product_id`` for ``category`` (falling back to the default category)."""
        for wanted in (category, self.default_category):
            amounts = [p.amount for p in self._media_products(product_id)
                       if p.rider_category_id in (wanted, None)]
            if amounts:
                return min(amounts)
        return None

    def is_pass(self, product_id: str) -> bool:
        return product_id in self.config.pass_days

    def _media_products(self, product_id: str) -> list[FareProduct]:
        # the configured medium (the card) when the feed names it; any medium otherwise
        media = self.config.fare_media_id
        rows = [p for p in self.products if p.product_id == product_id]
        on_media = [p for p in rows if media is None or p.fare_media_id in (media, None)]
        return on_media or rows

    def _in_timeframe(self, group: str, local_s: int) -> bool:
        return any(t.start_s <= local_s < t.end_s for t in self.timeframes if t.timeframe_group_id == group)

    def leg_price(self, category: str, route_id: str | None, at: dt.datetime) -> tuple[str, int, str | None]:
        """(product, amount, leg group) of one ride: the best-priority matching rule, cheapest product."""
        if not self.timeframes:
            found = self._legs.get((category, route_id))
            if found is None:
                found = self._legs[(category, route_id)] = self._leg_price(category, route_id, at)
            return found
        return self._leg_price(category, route_id, at)

    def _leg_price(self, category: str, route_id: str | None, at: dt.datetime) -> tuple[str, int, str | None]:
        local = at.astimezone(ZoneInfo(self.config.timezone))
        local_s = local.hour * 3600 + local.minute * 60 + local.second
        network = self.route_networks.get(route_id or "")
        rules = [r for r in self.leg_rules if not self.is_pass(r.product_id)
                 and (r.network_id is None or network is None or r.network_id == network)
                 and (r.from_timeframe_group_id is None or self._in_timeframe(r.from_timeframe_group_id, local_s))]
        if not rules:
            raise LookupError(f"no fare leg rule matches route {route_id!r}")
        top = max(r.rule_priority or 0 for r in rules)
        rules = [r for r in rules if (r.rule_priority or 0) == top]
        for wanted in (category, self.default_category):
            priced = [(p.amount, p.product_id, r.leg_group_id)
                      for r in rules for p in self._media_products(r.product_id)
                      if p.rider_category_id in (wanted, None)]
            if priced:
                amount, product_id, group = min(priced)
                return product_id, amount, group
        raise LookupError(f"no fare product for rider category {category!r}")


@dataclass(frozen=True)
class TapIn:
    """A tap as the engine sees it: UTC time, vehicle and route."""

    tap_id: str
    at: dt.datetime
    vehicle_id: str
    route_id: str | None = None


@dataclass(frozen=True)
class PassIn:
    product_id: str
    valid_from: dt.datetime
    valid_to: dt.datetime


@dataclass(frozen=True)
class RatedTap:
    tap_id: str
    outcome: Outcome
    fare: int
    reason: str | None = None
    product_id: str | None = None
    transfer: bool = False
    capped: bool = False


@dataclass
class _Journey:
    start: dt.datetime
    last: dt.datetime
    leg_group: str | None
    transfers: int
    paid: int


@dataclass
class _State:
    last_ride: TapIn | None = None
    last_pass_use: dt.datetime | None = None
    journey: _Journey | None = None
    spent: dict[tuple[str, dt.date], int] = field(default_factory=dict)


def rating_window(profile: FareProfile, at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The UTC interval rated together: the local day, or the local ISO week when a weekly cap is set.

    Journeys and caps never span two windows, which keeps rating deterministic per window.
    """
    zone = ZoneInfo(profile.config.timezone)
    return _window_of_day(zone, at.astimezone(zone).date(), bool(profile.config.weekly_cap))


@functools.lru_cache(maxsize=4096)
def _window_of_day(zone: ZoneInfo, day: dt.date, weekly: bool) -> tuple[dt.datetime, dt.datetime]:
    """The window holding local ``day`` (a batch asks for the same few days thousands of times)."""
    if weekly:
        day -= dt.timedelta(days=day.weekday())
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=7 if weekly else 1), dt.time(), tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def flat_categories(profile: FareProfile) -> frozenset[str]:
    """Categories whose every ride costs its leg price whatever the card did before, unless it is a double tap,
    a pass ride or denied: no daily or weekly cap, and no transfer rule that can change a fare (only "A + AB + B"
    rules without a transfer product, whose next leg costs its full price). Such a ride can be priced without
    reading the card's window; the database then only has to check the exceptions (``app.ticketing.fastpath``).
    """
    if any(rule.fare_transfer_type != 1 or rule.product_id is not None for rule in profile.transfer_rules):
        return frozenset()
    capped = set(profile.config.daily_cap) | set(profile.config.weekly_cap)
    return frozenset(c for c in (*profile.categories, profile.default_category) if c not in capped)


def rate(profile: FareProfile, category: str, taps: Iterable[TapIn], passes: Sequence[PassIn] = ()) -> list[RatedTap]:
    """Price every tap of one card and rating window; the result is in tap-time order."""
    state = _State()
    return [_rate_one(profile, category, tap, passes, state)
            for tap in sorted(taps, key=lambda t: (t.at, t.tap_id))]


def _rate_one(profile: FareProfile, category: str, tap: TapIn, passes: Sequence[PassIn], state: _State) -> RatedTap:
    cfg = profile.config
    last = state.last_ride
    if last and last.vehicle_id == tap.vehicle_id and (tap.at - last.at).total_seconds() <= cfg.double_tap_s:
        return RatedTap(tap.tap_id, "double_tap", 0, reason="double_tap")
    active = [p for p in passes if p.valid_from <= tap.at < p.valid_to]
    if active:
        if state.last_pass_use and (tap.at - state.last_pass_use).total_seconds() < cfg.passback_s:
            return RatedTap(tap.tap_id, "denied", 0, reason="passback", product_id=active[0].product_id)
        state.last_pass_use = tap.at
        state.last_ride = tap
        return RatedTap(tap.tap_id, "accepted", 0, product_id=active[0].product_id)
    product_id, amount, group = profile.leg_price(category, tap.route_id, tap.at)
    fare, transfer = _apply_transfer(profile, category, tap, group, amount, state)
    fare, capped = _apply_caps(profile, category, tap.at, fare, state)
    state.last_ride = tap
    return RatedTap(tap.tap_id, "accepted", fare, product_id=product_id, transfer=transfer, capped=capped)


def _transfer_rule(profile: FareProfile, journey: _Journey, group: str | None, at: dt.datetime) -> TransferRule | None:
    since = journey.start if profile.config.transfer_window_from == "first" else journey.last
    elapsed = (at - since).total_seconds()
    for rule in profile.transfer_rules:
        if rule.from_leg_group_id not in (None, journey.leg_group) or rule.to_leg_group_id not in (None, group):
            continue
        if rule.transfer_count not in (None, -1) and journey.transfers >= rule.transfer_count:
            continue
        if rule.duration_limit is not None and elapsed > rule.duration_limit:
            continue
        return rule
    return None


def _apply_transfer(profile: FareProfile, category: str, tap: TapIn, group: str | None, amount: int,
                    state: _State) -> tuple[int, bool]:
    journey = state.journey
    rule = _transfer_rule(profile, journey, group, tap.at) if journey else None
    if journey is None or rule is None:
        state.journey = _Journey(tap.at, tap.at, group, 0, amount)
        return amount, False
    transfer_amount = profile.product_amount(rule.product_id, category) if rule.product_id else 0
    transfer_amount = transfer_amount or 0
    if rule.fare_transfer_type == 0:  # A + AB: the next leg costs only the transfer product
        fare = transfer_amount
    elif rule.fare_transfer_type == 1:  # A + AB + B: full price plus the transfer product
        fare = transfer_amount + amount
    else:  # AB: the transfer product is the price of the whole journey
        fare = max(0, transfer_amount - journey.paid)
    journey.transfers += 1
    journey.last = tap.at
    journey.leg_group = group
    journey.paid += fare
    return fare, True


def _apply_caps(profile: FareProfile, category: str, at: dt.datetime, fare: int, state: _State) -> tuple[int, bool]:
    if category not in profile.config.daily_cap and category not in profile.config.weekly_cap:
        return fare, False  # most rides: no cap to count towards
    local = at.astimezone(ZoneInfo(profile.config.timezone)).date()
    periods = []
    if category in profile.config.daily_cap:
        periods.append(("day", local, profile.config.daily_cap[category]))
    if category in profile.config.weekly_cap:
        periods.append(("week", local - dt.timedelta(days=local.weekday()), profile.config.weekly_cap[category]))
    charged = fare
    for name, start, cap in periods:
        charged = min(charged, max(0, cap - state.spent.get((name, start), 0)))
    for name, start, _ in periods:
        state.spent[(name, start)] = state.spent.get((name, start), 0) + charged
    return charged, charged < fare
