"""MobilityData's GTFS-realtime rules, as the independent ``gtfs-rt-validator`` checks them, on real worker output:
the demo city (the Almaty demo feed, simulated) streams ten minutes of pings through the AVL ingest into the
worker, and both snapshots it publishes are validated together against the static feed."""

from __future__ import annotations

import datetime as dt
import json
import time
import zipfile
from pathlib import Path

import pytest
from flask import Flask
from google.transit import gtfs_realtime_pb2 as rt
from gtfs_rt_validator.api import Mode, Request, resolve_roles, validate

from app import get_db, get_redis
from app.demo import daytime_feed, register_vehicles
from app.realtime.gtfs_rt import TRIP_UPDATES, VEHICLE_POSITIONS
from app.realtime.store import read_snapshot
from app.schedule.importer import import_feed
from app.worker.loop import Worker
from app.worker.simstream import LiveCity
from app.worker.sources import IngestSource
from prediction.gtfs.schedule import read_schedule
from prediction.network import build_network
from tests.conftest import DEMO_FEED

FORBIDDEN_WARNINGS = {"W002", "W003", "W009"}  # no vehicle id, ids missing from the other feed, relationship unset


def zip_feed(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.glob("*.txt")):
            archive.write(path, path.name)
    return target


def worker_snapshots(app: Flask, feed: Path, out: Path) -> tuple[float, dict[str, Path]]:
    """Run the worker as ``qala worker --simulate`` does over ten minutes of the simulated city (a cycle a
    minute) and write the snapshots of its last cycle."""
    import_feed(get_db(app), feed, label="almaty", canonical=False)
    now = float(int(time.time()))
    city = LiveCity(build_network(read_schedule(feed, canonical=False)), now - 600, seed=5, warmup_s=300)
    db = get_db(app)
    with db.session() as session:
        worker = Worker.from_database(session, get_redis(app), out / "models")
        register_vehicles(session, city.vehicle_ids())
    source = IngestSource(db.session, city.pings_until)
    for moment in range(int(now) - 600, int(now) + 1, 60):
        events, pings = source.poll(float(moment))
        worker.take_pings(pings)
        worker.cycle(float(moment), events)
    paths = {}
    for role, name in (("tu", TRIP_UPDATES), ("vp", VEHICLE_POSITIONS)):
        snapshot = read_snapshot(get_redis(app), name)
        assert snapshot is not None and snapshot.timestamp == int(now)
        paths[role] = out / f"{name}.pb"
        paths[role].write_bytes(snapshot.body)
    return now, paths


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_worker_feeds_pass_the_validator(app: Flask, tmp_path: Path) -> None:
    feed = daytime_feed(DEMO_FEED, tmp_path / "instance", dt.datetime.now(dt.UTC))[0]
    now, paths = worker_snapshots(app, feed, tmp_path)
    inputs = resolve_roles({role: str(path) for role, path in paths.items()})
    result = validate(Request(mode=Mode.MODERN, gtfs=zip_feed(feed, tmp_path / "feed.zip"), inputs=inputs,
                              at=dt.datetime.fromtimestamp(now, dt.UTC)))
    report = json.loads(result.write(tmp_path / "report").report.read_text())
    found = {n["code"]: (n["severity"], n["totalNotices"], n["sampleNotices"][:2]) for n in report["notices"]}
    assert report["summary"]["messagesValidated"] == 2 and {"E022", "W002", "W003", "W009"} <= set(
        report["summary"]["rulesRun"])
    assert not result.has_errors(), found
    assert not FORBIDDEN_WARNINGS & set(found), found
    updates, positions = (rt.FeedMessage.FromString(paths[role].read_bytes()) for role in ("tu", "vp"))
    assert len(updates.entity) == len(positions.entity) > 20  # one TripUpdate per vehicle on its trip
    assert all(len(e.trip_update.stop_time_update) > 0 for e in updates.entity)
