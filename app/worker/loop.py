"""The worker: each cycle takes in new stop events and vehicle positions, predicts every owned active trip,
writes the boards, refreshes the GTFS-rt snapshots every ``snapshot_every_s`` and samples the prediction log.

Sharding: routes are split by a stable hash (``--shard K/N``); a worker predicts only its routes' trips
(no double work) and the board writer merges the shards' rows per stop (no lost updates). Vehicles without
a trip go to the shard their id hashes to.
"""

from __future__ import annotations

import datetime as dt
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from google.transit.gtfs_realtime_pb2 import FeedEntity
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.avl.network import FeedNetwork, load_network
from app.cache import RedisClient
from app.models import FeedVersion, Trip
from app.realtime.catalog import StaticCatalog
from app.realtime.compose import RowFormatter, TimetableWindow, compose_rows
from app.realtime.cycle import CyclePredictions
from app.realtime.gtfs_rt import (
    LIVE_VEHICLES,
    TRIP_UPDATES,
    VEHICLE_POSITIONS,
    VehicleState,
    empty_feed,
    off_shape,
    serving_vehicles,
    vehicle_entity,
)
from app.realtime.shards import BoardWriter
from app.realtime.trip_updates import TripUpdateEncoder, varint
from app.worker.events import LiveEvents
from app.worker.predict import ModelWatcher, Predictor, load_worker_predictor, predict_cycle
from app.worker.predlog import PredictionLogSampler
from prediction.avl.matching import ShapeLine
from prediction.eta.online import OnlineSelection
from prediction.network import Network

__all__ = ["CycleReport", "Shard", "Worker", "WorkerSettings", "network_for_worker"]

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Shard:
    """``index`` of ``count`` (0-based); parsed from ``K/N`` with K in 1..N."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            k, n = (int(part) for part in text.split("/"))
        except ValueError as exc:
            raise ValueError(f"--shard {text!r}: expected K/N, e.g. 2/4") from exc
        if not 1 <= k <= n:
            raise ValueError(f"--shard {text!r}: K must be between 1 and N")
        return cls(k - 1, n)

    def owns(self, name: str) -> bool:
        return zlib.crc32(name.encode()) % self.count == self.index


@dataclass(frozen=True)
class WorkerSettings:
    shard: Shard = Shard()
    window_min: int = 90
    ttl_s: int = 90
    snapshot_every_s: float = 10.0  # GTFS-rt must be refreshed at least every 15 s
    vehicle_max_age_s: float = 300.0
    with_timetable: bool = True


@dataclass
class CycleReport:
    now: float
    predictions: int
    boards: int
    changed: int
    live_rows: int
    scheduled_rows: int
    vehicles: int
    logged: int
    seconds: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        parts = " ".join(f"{k}={v * 1000:.0f}ms" for k, v in self.seconds.items())
        return (f"predictions={self.predictions} boards={self.boards} changed={self.changed} "
                f"live_rows={self.live_rows} vehicles={self.vehicles} logged={self.logged} {parts}")


def network_for_worker(session: Session) -> FeedNetwork:
    """The active feed's network with trip directions (a model feature the AVL network does not carry)."""
    feed_id = session.scalar(select(FeedVersion.id).where(FeedVersion.is_active.is_(True)))
    if feed_id is None:
        raise LookupError("no active feed: run 'qala gtfs import' first")
    network = load_network(session, feed_id)
    directions = {trip_id: direction for trip_id, direction in session.execute(
        select(Trip.trip_id, Trip.direction_id).where(Trip.feed_version_id == feed_id))}
    trips = network.net.feed.trips
    trips["direction_id"] = trips["trip_id"].map(directions)
    return network


class Worker:
    """One worker process's state over cycles (its live events, vehicles, caches and writers)."""

    def __init__(self, net: Network, catalog: StaticCatalog, predictor: Predictor, client: RedisClient, *,
                 settings: WorkerSettings | None = None, log: PredictionLogSampler | None = None,
                 models: ModelWatcher | None = None) -> None:
        self.net, self.catalog, self.predictor = net, catalog, predictor
        self.models = models  # when given, a newly trained model replaces the predictor between cycles
        self.settings = cfg = settings or WorkerSettings()
        routes = np.array([cfg.shard.owns(str(r)) for r in net.route_ids.tolist()], dtype=bool)
        self._own_route = routes
        self.events = LiveEvents(net, owns_trip=self.owns_trip)
        self.formatter = RowFormatter(catalog, net)
        self.timetable = TimetableWindow(net)
        self.trip_updates = TripUpdateEncoder(catalog, net)
        self.writer = BoardWriter(client, catalog.stops, catalog.timezone, shard=cfg.shard.index,
                                  shards=cfg.shard.count, ttl_s=cfg.ttl_s)
        self.log = log
        # what each group serves, re-chosen hourly from the arrivals this worker has seen (prediction/eta/online.py)
        self.online = OnlineSelection()
        self.vehicles: dict[str, VehicleState] = {}
        # serialized while the state holds, and whether it was published on its trip (not off its shape)
        self._vehicle_entities: dict[str, tuple[VehicleState, bytes, bool]] = {}
        self._last_snapshot = -np.inf
        self._trip_index = {trip_id: i for i, trip_id in enumerate(net.trip_ids.tolist())}

    @classmethod
    def from_database(cls, session: Session, client: RedisClient, model_dir: Path, *,
                      settings: WorkerSettings | None = None, log: PredictionLogSampler | None = None) -> Worker:
        network = network_for_worker(session)
        catalog = StaticCatalog.load(session)
        predictor, _ = load_worker_predictor(model_dir, network.net)
        return cls(network.net, catalog, predictor, client, settings=settings, log=log,
                   models=ModelWatcher(model_dir, network.net, predictor))

    def owns_trip(self, trips: IntArray) -> npt.NDArray[np.bool_]:
        return self._own_route[self.net.trip_route[trips]]

    def take_pings(self, pings: pd.DataFrame) -> None:
        """Latest position per vehicle (columns of the AVL ingest frame; ``start_date`` as YYYYMMDD)."""
        if pings.empty:
            return
        latest = pings.sort_values("t").drop_duplicates("vehicle_id", keep="last")
        row: Any  # an itertuples row: its fields are the frame's columns, whose types mypy cannot know
        for row in latest.itertuples(index=False):
            old = self.vehicles.get(str(row.vehicle_id))
            if old is not None and old.timestamp.timestamp() >= float(row.t):
                continue
            trip = None if pd.isna(row.trip_id) else str(row.trip_id)
            day = None if trip is None or pd.isna(row.start_date) else str(row.start_date)
            self.vehicles[str(row.vehicle_id)] = VehicleState(
                vehicle_id=str(row.vehicle_id), lat=float(row.latitude), lon=float(row.longitude),
                timestamp=dt.datetime.fromtimestamp(float(row.t), dt.UTC), trip_id=trip,
                service_date=None if day is None else dt.date(int(day[:4]), int(day[4:6]), int(day[6:8])),
                bearing=None if pd.isna(row.bearing) else float(row.bearing),
                speed_mps=None if pd.isna(row.speed) else float(row.speed))

    def _owned_vehicles(self, now: float) -> list[VehicleState]:
        fresh = [v for v in self.vehicles.values() if v.timestamp.timestamp() >= now - self.settings.vehicle_max_age_s]
        self.vehicles = {v.vehicle_id: v for v in fresh}
        out = []
        for v in fresh:
            trip = self._trip_index.get(v.trip_id) if v.trip_id else None
            mine = bool(self._own_route[self.net.trip_route[trip]]) if trip is not None \
                else self.settings.shard.owns(v.vehicle_id)
            if mine:
                out.append(v)
        return out

    def cycle(self, now: float, events: pd.DataFrame | None = None, pings: pd.DataFrame | None = None
              ) -> CycleReport:
        """Take in ``events`` (stop events learnt since the last cycle) and ``pings`` (vehicle positions), predict,
        publish."""
        clock: dict[str, float] = {}
        started = time.perf_counter()
        newer = self.models.check(now) if self.models is not None else None
        if newer is not None:
            self.predictor = newer
        if events is not None:
            self.events.add(events, known_at=now)
        if pings is not None:
            self.take_pings(pings)
        predictions = predict_cycle(self.net, self.events, self.predictor, now,
                                    max_ahead_s=self.settings.window_min * 60.0, online=self.online)
        clock["predict"] = time.perf_counter() - started
        mark = time.perf_counter()
        rows = compose_rows(self.net, self.formatter, self.timetable, predictions, now=now,
                            window_min=self.settings.window_min, limit=self.writer.limit, owns_trip=self.owns_trip,
                            with_timetable=self.settings.with_timetable)
        clock["compose"] = time.perf_counter() - mark
        mark = time.perf_counter()
        result = self.writer.write(rows, now=now, window_min=self.settings.window_min)
        clock["redis"] = time.perf_counter() - mark
        vehicles = 0
        if now - self._last_snapshot >= self.settings.snapshot_every_s:
            mark = time.perf_counter()
            vehicles = self.publish_snapshots(predictions, now)
            clock["gtfs_rt"] = time.perf_counter() - mark
        logged = self.log.offer(self.net, self.catalog, predictions, self.predictor.name) if self.log else 0
        clock["total"] = time.perf_counter() - started
        return CycleReport(now, len(predictions), result.written, result.changed, rows.live_rows,
                           rows.scheduled_rows, vehicles, logged, clock)

    def publish_snapshots(self, predictions: CyclePredictions, now: float) -> int:
        """Both GTFS-rt snapshots (this shard's entities under a fresh header), pairing trips and vehicles as
        ``app.realtime.gtfs_rt`` says, and every fresh vehicle for the live maps."""
        self._last_snapshot = now
        header = empty_feed(dt.datetime.fromtimestamp(now, dt.UTC)).SerializeToString()
        vehicles = self._owned_vehicles(now)
        entities = self._vehicle_positions(vehicles)
        self.writer.write_snapshot(LIVE_VEHICLES, header, b"".join(entities[key] for key in sorted(entities)), now=now)
        p = predictions
        rows, vehicle_ids, paired = self._served_rows(p, vehicles)
        updates = self.trip_updates.encode(
            p.trip[rows], p.start_date[rows], p.visit[rows], p.predicted[rows],
            None if p.lower is None else p.lower[rows], None if p.upper is None else p.upper[rows],
            vehicle_ids, p.observed_at[rows])
        self.writer.write_snapshot(TRIP_UPDATES, header, updates, now=now)
        self.writer.write_snapshot(VEHICLE_POSITIONS, header, b"".join(entities[key] for key in sorted(paired)),
                                   now=now)
        return len(vehicles)

    def _served_rows(self, p: CyclePredictions, vehicles: list[VehicleState]
                     ) -> tuple[IntArray, npt.NDArray[np.object_], set[str]]:
        """The prediction rows of trips a published vehicle serves, that vehicle's id per row, and the vehicles
        whose trip keeps at least one stop time update (W002, W003, E047: both feeds name the same pairs)."""
        far = {key for key, (_, _, assigned) in self._vehicle_entities.items() if not assigned}
        day_of_trip = np.full(len(self.net.trip_ids), None, dtype=object)
        vehicle_of_trip = np.full(len(self.net.trip_ids), None, dtype=object)
        for (trip_id, day), v in serving_vehicles(self.catalog, vehicles, unassigned=far).items():
            trip = self._trip_index.get(trip_id)
            if trip is not None:
                day_of_trip[trip], vehicle_of_trip[trip] = f"{day:%Y%m%d}", v.vehicle_id
        served = (day_of_trip[p.trip] == p.start_date).astype(bool) & self.trip_updates.known(p.trip, p.visit)
        rows = np.flatnonzero(served)
        return rows, vehicle_of_trip[p.trip[rows]], {str(v) for v in vehicle_of_trip[np.unique(p.trip[rows])]}

    def _vehicle_positions(self, vehicles: list[VehicleState]) -> dict[str, bytes]:
        """Each vehicle's VehiclePositions entity (a field of a header-less ``FeedMessage``), by vehicle id. A
        vehicle's entity is serialized (and checked against its trip's shape) only when its state changed since
        the last snapshot."""
        cache = self._vehicle_entities
        changed = [v for v in vehicles if cache.get(v.vehicle_id, (None, b"", False))[0] is not v]
        far = off_shape(changed, self.shape_of)
        fresh: dict[str, tuple[VehicleState, bytes, bool]] = {}
        for v in changed:
            entity = FeedEntity()
            vehicle_entity(entity, self.catalog, v, assign=v.vehicle_id not in far)
            raw = entity.SerializeToString()
            fresh[v.vehicle_id] = (v, b"\x12" + varint(len(raw)) + raw, v.vehicle_id not in far)
        self._vehicle_entities = {v.vehicle_id: fresh.get(v.vehicle_id) or cache[v.vehicle_id] for v in vehicles}
        return {key: found[1] for key, found in self._vehicle_entities.items()}

    def shape_of(self, trip_id: str | None) -> ShapeLine | None:
        trip = self._trip_index.get(trip_id) if trip_id else None
        return None if trip is None else self.net.lines.get(str(self.net.trip_shape[trip]))

    def flush(self) -> None:
        if self.log is not None:
            self.log.flush()
