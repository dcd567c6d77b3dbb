"""Building boards: from the timetable alone (``realtime: false``) and from the predictor's arrivals.

``publish_schedule`` makes the whole path work before any model exists; ``publish_predictions`` is what
the prediction worker calls each cycle with its predicted arrivals and vehicle states.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Stop
from app.realtime.boards import Board, BoardRow, PredictedArrival, merge_rows, rows_from_schedule_items
from app.realtime.catalog import StaticCatalog
from app.realtime.gtfs_rt import (
    LIVE_VEHICLES,
    TRIP_UPDATES,
    VEHICLE_POSITIONS,
    VehicleState,
    serving_vehicles,
    trip_updates_feed,
    vehicle_positions_feed,
)
from app.realtime.publisher import BoardPublisher, PublishResult
from app.schedule import timetable
from app.schedule.calendars import CalendarCache

__all__ = [
    "CycleResult", "boarding_stop_ids", "publish_predictions", "publish_schedule", "schedule_board", "schedule_rows",
]

BOARD_LIMIT = 20


@dataclass(frozen=True)
class CycleResult:
    boards: PublishResult
    dropped: int  # predictions naming a trip, route or stop that the static feed does not have


def schedule_rows(session: Session, calendars: CalendarCache, stop_id: str, *, now: dt.datetime,
                  window_min: int, limit: int = BOARD_LIMIT) -> list[BoardRow]:
    answer = timetable.arrivals(session, calendars, stop_id, at=now, window_min=window_min, route=None, limit=limit)
    return rows_from_schedule_items(answer["arrivals"])


def schedule_board(session: Session, calendars: CalendarCache, catalog: StaticCatalog, stop_id: str, *,
                   now: dt.datetime, window_min: int, limit: int = BOARD_LIMIT) -> Board:
    rows = schedule_rows(session, calendars, stop_id, now=now, window_min=window_min, limit=limit)
    return Board(catalog.stops[stop_id], catalog.timezone, now, window_min, _with_text_colors(catalog, rows))


def _with_text_colors(catalog: StaticCatalog, rows: Iterable[BoardRow]) -> list[BoardRow]:
    out = []
    for row in rows:
        route = catalog.routes.get(row.route_id)
        out.append(row if route is None else replace(row, route_text_color=route.text_color))
    return out


def boarding_stop_ids(session: Session, catalog: StaticCatalog) -> list[str]:
    """Stops a board can stand at (not stations or entrances)."""
    return sorted(session.scalars(select(Stop.stop_id).where(
        Stop.feed_version_id == catalog.feed_id, Stop.location_type == 0)))


def publish_schedule(publisher: BoardPublisher, session: Session, calendars: CalendarCache, *,
                     now: dt.datetime, window_min: int, stop_ids: Sequence[str] | None = None) -> PublishResult:
    """Publish timetable boards (``realtime: false``) for ``stop_ids`` (default: every boarding stop)."""
    catalog = StaticCatalog.load(session)
    ids = list(stop_ids) if stop_ids is not None else boarding_stop_ids(session, catalog)
    boards = [schedule_board(session, calendars, catalog, s, now=now, window_min=window_min) for s in ids]
    return publisher.publish(boards)


def publish_predictions(
    publisher: BoardPublisher,
    catalog: StaticCatalog,
    predictions: Sequence[PredictedArrival],
    vehicles: Sequence[VehicleState],
    *,
    now: dt.datetime,
    window_min: int,
    scheduled: dict[str, list[BoardRow]] | None = None,
) -> CycleResult:
    """One worker cycle: a board per stop with predictions (filled with ``scheduled`` rows of trips without
    one, when given), both GTFS-rt snapshots (trips and vehicles paired, see ``app.realtime.gtfs_rt``) and the
    live maps' vehicles."""
    known = [p for p in predictions if catalog.knows(p)]
    horizon = now + dt.timedelta(minutes=window_min)
    live: dict[str, list[BoardRow]] = defaultdict(list)
    for p in known:
        if now - dt.timedelta(minutes=1) <= p.predicted <= horizon:
            live[p.stop_id].append(catalog.board_row(p, now=now))
    stops = sorted(set(live) | set(scheduled or {}))
    boards = [
        Board(catalog.stops[s], catalog.timezone, now, window_min,
              merge_rows(live.get(s, []), (scheduled or {}).get(s, []), limit=BOARD_LIMIT))
        for s in stops if s in catalog.stops
    ]
    result = publisher.publish(boards)
    serving = serving_vehicles(catalog, vehicles)
    updates = trip_updates_feed(catalog, known, now, serving=serving)
    paired = {serving[key].vehicle_id for key in {(p.trip_id, p.service_date) for p in known} & serving.keys()}
    publisher.publish_snapshot(TRIP_UPDATES, updates.SerializeToString(), now)
    publisher.publish_snapshot(VEHICLE_POSITIONS, vehicle_positions_feed(
        catalog, [v for v in vehicles if v.vehicle_id in paired], now).SerializeToString(), now)
    publisher.publish_snapshot(LIVE_VEHICLES, vehicle_positions_feed(catalog, vehicles, now).SerializeToString(), now)
    return CycleResult(boards=result, dropped=len(predictions) - len(known))
