"""Reads the active feed's Fares v2 rows into plain ``FareRows`` and caches the built profile per feed version."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import (
    FareLegRule,
    FareProduct,
    FareTransferRule,
    FeedVersion,
    RiderCategory,
    Route,
    RouteNetwork,
    Timeframe,
)
from app.ticketing import fares
from app.ticketing.fares import FareProfile
from app.ticketing.profiles import FareRows, build_profile

__all__ = ["ProfileCache", "load_rows"]


def load_rows(session: Session, feed_version_id: int) -> FareRows | None:
    """The feed's Fares v2 rows, or ``None`` when it has no leg rules (the profile's defaults apply)."""
    fv = feed_version_id
    legs = tuple(fares.LegRule(r.fare_product_id, r.leg_group_id, r.network_id, r.from_timeframe_group_id,
                               r.rule_priority)
                 for r in session.scalars(select(FareLegRule).where(FareLegRule.feed_version_id == fv)))
    if not legs:
        return None
    categories = list(session.scalars(select(RiderCategory).where(RiderCategory.feed_version_id == fv)))
    default = next((c.rider_category_id for c in categories if c.is_default_fare_category), "standard")
    products = tuple(fares.FareProduct(p.fare_product_id, p.amount_minor, p.rider_category_id, p.fare_media_id)
                     for p in session.scalars(select(FareProduct).where(FareProduct.feed_version_id == fv)))
    transfers = tuple(fares.TransferRule(t.fare_transfer_type, t.from_leg_group_id, t.to_leg_group_id,
                                         t.transfer_count, t.duration_limit, t.fare_product_id)
                      for t in session.scalars(select(FareTransferRule).where(FareTransferRule.feed_version_id == fv)))
    frames = tuple(fares.TimeframeRow(t.timeframe_group_id, t.start_s, t.end_s)
                   for t in session.scalars(select(Timeframe).where(Timeframe.feed_version_id == fv)))
    networks = {r.route_id: r.network_id for r in session.scalars(select(Route).where(Route.feed_version_id == fv))
                if r.network_id}
    networks.update({r.route_id: r.network_id
                     for r in session.scalars(select(RouteNetwork).where(RouteNetwork.feed_version_id == fv))})
    return FareRows(tuple(c.rider_category_id for c in categories), default, products, legs, transfers, frames,
                    tuple(sorted(networks.items())))


@dataclass
class ProfileCache:
    """One built profile per (profile name, active feed version); the active version is looked up again at
    most every ``recheck_s`` seconds, so a newly activated feed's fares apply within that time."""

    name: str
    recheck_s: float = 5.0
    _built: dict[int | None, FareProfile] = field(default_factory=dict)
    _checked_at: float = -1e9
    _refreshing: threading.Lock = field(default_factory=threading.Lock)

    def fresh(self) -> FareProfile | None:
        """The built profile when the active feed version was checked within ``recheck_s`` (no session needed)."""
        if self._built and time.monotonic() - self._checked_at < self.recheck_s:
            return next(iter(self._built.values()))
        return None

    def refreshed(self, sessions: Callable[[], Session]) -> FareProfile:
        """The profile, rechecking the active feed when due — by one thread at a time: while one thread looks it
        up, the others go on with the profile they had (checked at most ``recheck_s`` plus that lookup ago)
        instead of all querying the database at once."""
        found = self.fresh()
        if found is not None:
            return found
        if self._built and not self._refreshing.acquire(blocking=False):
            return next(iter(self._built.values()))
        if not self._built:
            self._refreshing.acquire()
        try:
            with sessions() as session:
                return self.get(session)
        finally:
            self._refreshing.release()

    def get(self, session: Session) -> FareProfile:
        if self._built and time.monotonic() - self._checked_at < self.recheck_s:
            return next(iter(self._built.values()))
        active = session.scalar(select(FeedVersion.id).where(FeedVersion.is_active.is_(True)))
        self._checked_at = time.monotonic()
        profile = self._built.get(active)
        if profile is None:
            rows = load_rows(session, active) if active is not None else None
            profile = build_profile(self.name, rows)
            self._built = {active: profile}
        return profile
