"""Where the worker's AVL comes from, each polled once per cycle for (new stop events, new pings):

- ``DatabaseSource``: what the AVL ingest of other processes stored (on-board units posting to the web API,
  ``qala avl ingest-gtfsrt``) — stop events by the time they became known (``known_at``: a ping after the stop,
  often minutes after the departure; rows stored before it existed by departure time), with an overlap for
  refined events, and pings.
- ``IngestSource``: pings this worker fetches itself (a GTFS-rt VehiclePositions URL, the live simulator),
  stored through the AVL ingest; the stop events the ingest derives are taken on their way to the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import pandas as pd
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.avl.ingest import AvlService, IngestReport, IngestSettings, empty_frame
from app.avl.network import FeedNetwork
from app.avl.tracker import TripTracker
from app.models import Ping, StopEvent
from app.worker.events import EVENT_COLUMNS, KNOWN_AT

__all__ = ["AvlPoll", "CapturingTracker", "DatabaseSource", "IngestSource", "events_from_rows"]


class AvlPoll(Protocol):
    def poll(self, now: float) -> tuple[pd.DataFrame, pd.DataFrame]: ...


def _epoch(value: dt.datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()


def events_from_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Stop-event rows (``avl_stop_events`` columns) as the worker's event frame, with ``known_at`` (NaN where
    the row has none: the worker then takes the event as known at its cycle)."""
    frame = pd.DataFrame({
        "trip_id": [r["trip_id"] for r in rows],
        "start_date": [r["service_date"].strftime("%Y%m%d") for r in rows],
        "stop_sequence": [int(r["stop_sequence"]) for r in rows],
        "arrival": [_epoch(r["arrival_at"]) for r in rows],
        "departure": [_epoch(r["departure_at"]) for r in rows],
        "vehicle_id": [r["vehicle_id"] or None for r in rows],
    }, columns=list(EVENT_COLUMNS))
    frame[KNOWN_AT] = [float("nan") if r.get("known_at") is None else _epoch(r["known_at"]) for r in rows]
    return frame


class DatabaseSource:
    """Polls ``avl_stop_events`` and ``avl_pings`` for what arrived since the last poll."""

    def __init__(self, session_factory: Callable[[], Session], feed_version_id: int, *, overlap_s: float = 180.0,
                 lookback_s: float = 1800.0) -> None:
        self.session_factory, self.feed_version_id = session_factory, feed_version_id
        self.overlap_s, self.lookback_s = overlap_s, lookback_s
        self._events_since: float | None = None
        self._pings_since: float | None = None

    def poll(self, now: float) -> tuple[pd.DataFrame, pd.DataFrame]:
        events_since = self._events_since if self._events_since is not None else now - self.lookback_s
        pings_since = self._pings_since if self._pings_since is not None else now - 300.0
        with self.session_factory() as session:
            after = dt.datetime.fromtimestamp(events_since - self.overlap_s, dt.UTC)
            rows = session.execute(
                select(StopEvent.trip_id, StopEvent.service_date, StopEvent.stop_sequence, StopEvent.arrival_at,
                       StopEvent.departure_at, StopEvent.vehicle_id, StopEvent.known_at)
                .where(StopEvent.feed_version_id == self.feed_version_id,
                       or_(StopEvent.known_at > after,
                           and_(StopEvent.known_at.is_(None), StopEvent.departure_at > after)))
            ).mappings().all()
            pings = session.execute(
                select(Ping.vehicle_id, Ping.recorded_at, Ping.lat_e6, Ping.lon_e6, Ping.trip_id, Ping.route_id,
                       Ping.service_date, Ping.bearing, Ping.speed)
                .where(Ping.recorded_at > dt.datetime.fromtimestamp(pings_since, dt.UTC))).all()
        events = events_from_rows([dict(r) for r in rows])
        if len(events):
            known = events["known_at"].fillna(events["departure"])
            self._events_since = max(events_since, float(known.max()))
        frame = _ping_frame(pings)
        if len(frame):
            self._pings_since = max(pings_since, float(frame["t"].max()))
        return events, frame


def _ping_frame(rows: Sequence[Any]) -> pd.DataFrame:
    if not rows:
        return empty_frame()
    return pd.DataFrame({
        "vehicle_id": [r.vehicle_id for r in rows], "t": [_epoch(r.recorded_at) for r in rows],
        "latitude": [r.lat_e6 / 1e6 for r in rows], "longitude": [r.lon_e6 / 1e6 for r in rows],
        "trip_id": [r.trip_id for r in rows], "route_id": [r.route_id for r in rows],
        "start_date": [None if r.service_date is None else r.service_date.strftime("%Y%m%d") for r in rows],
        "bearing": [float("nan") if r.bearing is None else float(r.bearing) for r in rows],
        "speed": [float("nan") if r.speed is None else float(r.speed) for r in rows],
    })


class CapturingTracker(TripTracker):
    """The ingest's trip tracker, keeping the stop-event rows it derives for the worker to take."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.captured: list[dict[str, Any]] = []

    def add(self, session: Session, network: FeedNetwork, pings: pd.DataFrame) -> list[dict[str, Any]]:
        rows = super().add(session, network, pings)
        self.captured.extend(rows)
        return rows


class IngestSource:
    """Pings from ``produce(now)`` stored through the AVL ingest (validated, matched, stop events derived)."""

    def __init__(self, session_factory: Callable[[], Session], produce: Callable[[float], pd.DataFrame], *,
                 source: str = "api", settings: IngestSettings | None = None) -> None:
        self.session_factory, self.produce, self.source = session_factory, produce, source
        self.tracker = CapturingTracker()
        self.service = AvlService(tracker=self.tracker)
        self.settings = settings or IngestSettings()
        self.report = IngestReport(received=0)

    def poll(self, now: float) -> tuple[pd.DataFrame, pd.DataFrame]:
        pings = self.produce(now)
        if pings.empty:
            return events_from_rows([]), pings
        self.tracker.captured.clear()
        with self.session_factory() as session:
            self.report.add(self.service.ingest(session, pings, self.source, now=now, settings=self.settings))
        rows, self.tracker.captured = self.tracker.captured, []
        return events_from_rows(rows), pings
