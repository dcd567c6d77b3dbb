"""The live pieces of ``make demo``, briefly: today's simulated city streams its pings through the AVL ingest
(vehicles registered first) into the worker, boards turn realtime, demo cards tap through the ticketing service;
and the ``qala worker`` command runs cycles from the database."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from app import get_db, get_redis
from app.demo import DemoTaps, daytime_feed, register_vehicles
from app.models import Ping, StopEvent, Tap, Vehicle
from app.realtime.store import board_key, read_board
from app.schedule.importer import import_feed
from app.worker.loop import Worker
from app.worker.simstream import LiveCity
from app.worker.sources import IngestSource
from prediction.gtfs.schedule import read_schedule
from prediction.network import build_network
from tests.conftest import DEMO_FEED
from tests.worker_feed import add_worker_feed


@pytest.fixture(scope="module")
def demo_feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo feed as ``qala demo`` runs it now: at night in Almaty (no bus runs) moved to where it is day."""
    return daytime_feed(DEMO_FEED, tmp_path_factory.mktemp("instance"), dt.datetime.now(dt.UTC))[0]


@pytest.fixture
def almaty_app(app: Flask, demo_feed: Path) -> Flask:
    import_feed(get_db(app), demo_feed, label="almaty", canonical=False)
    return app


@pytest.fixture(scope="module")
def city(demo_feed: Path) -> tuple[float, LiveCity]:
    """Today's simulated city (the feed read from its folder: the same trips as the imported one)."""
    now = time.time()
    net = build_network(read_schedule(demo_feed, canonical=False))
    return now, LiveCity(net, now - 60, seed=3, warmup_s=300)  # started a minute ago


def realtime_boards(app: Flask) -> list[dict[str, Any]]:
    client = get_redis(app)
    out = []
    for key in client.scan_iter(match=board_key("*"), count=1000):
        stored = read_board(client, key.decode().rsplit(":", 1)[1])
        if stored is not None:
            body = json.loads(stored.body)
            if body["realtime"]:
                out.append(body)
    return out


def test_simulated_city_streams_into_live_boards_and_riders_tap(almaty_app: Flask, city: tuple[float, LiveCity],
                                                                 tmp_path: Path) -> None:
    now, live_city = city
    db = get_db(almaty_app)
    with db.session() as session:
        worker = Worker.from_database(session, get_redis(almaty_app), tmp_path / "models")
    vehicles = live_city.vehicle_ids()
    with db.session() as session:
        assert register_vehicles(session, vehicles) == len(vehicles) > 0
        assert register_vehicles(session, vehicles) == 0  # idempotent
    source = IngestSource(db.session, live_city.pings_until)
    taps = DemoTaps.prepare(almaty_app, live_city)
    for moment in (now - 60, now):  # two cycles catching up to the wall clock
        events, pings = source.poll(moment)
        worker.take_pings(pings)
        worker.cycle(moment, events)
        taps.feed(moment)
    assert source.report.stored > 0 and source.report.stop_events > 0
    assert source.report.rejected.get("unknown_vehicle", 0) == 0
    boards = realtime_boards(almaty_app)
    assert boards, "no board became realtime"
    live = [row for b in boards for row in b["arrivals"] if row["realtime"]]
    # a bus's next trip of its block is predicted before it starts: those rows name no vehicle yet
    assert all(row["vehicle_id"] in (*vehicles, None) and row["predicted_time"] for row in live)
    assert any(row["vehicle_id"] is not None for row in live)
    applied = sum(n for k, n in taps.counts.items() if not k.startswith("error"))
    assert applied > 0 and not [k for k in taps.counts if k.startswith("error")]
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Ping)) == source.report.stored
        assert session.scalar(select(func.count()).select_from(StopEvent)) > 0
        assert session.scalar(select(func.count()).select_from(Vehicle)) == len(vehicles)
        assert session.scalar(select(func.count()).select_from(Tap)) == applied


def test_worker_command_runs_cycles(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    add_worker_feed(app)
    result = runner.invoke(args=["worker", "--cycles", "2", "--cycle", "0.5", "--models", str(tmp_path),
                                 "--no-log"])
    assert result.exit_code == 0, result.output
    assert "predictor deviation" in result.output and result.output.count("predictions=") == 2
    bad = runner.invoke(args=["worker", "--shard", "3/2"])
    assert bad.exit_code == 2 and "--shard" in bad.output
