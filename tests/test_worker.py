"""The prediction worker: live boards from stop events (rows shaped like ``BoardRow.item``, timetable rows for
runs not seen yet), pub/sub per changed stop, shards merging rows at a shared stop without losing any, the
prediction log sampled once a minute per trip, and the database as AVL source."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from sqlalchemy import func, select

from app import get_db, get_redis
from app.models import PredictionLog, StopEvent
from app.realtime.boards import PredictedArrival
from app.realtime.store import board_channel, board_key, read_board
from app.worker.loop import Shard, Worker, WorkerSettings
from app.worker.sources import DatabaseSource
from prediction.geo import cumulative_distance_m
from tests.api_feed import SHAPE_SH12
from tests.worker_feed import ALMATY, MORNING, add_worker_feed, event, events, make_worker

# with three shards route R12 hashes to shard 2 and R92 to shard 3 (S2 is served by both)
R12_SHARD, R92_SHARD = Shard(1, 3), Shard(2, 3)


def board(app: Flask, stop_id: str) -> dict[str, Any] | None:
    stored = read_board(get_redis(app), stop_id)
    return None if stored is None else json.loads(stored.body)


@pytest.fixture
def feed_app(app: Flask) -> Flask:
    add_worker_feed(app)
    return app


def test_shards_split_the_two_routes() -> None:
    assert R12_SHARD.owns("R12") and not R12_SHARD.owns("R92")
    assert R92_SHARD.owns("R92") and not R92_SHARD.owns("R12")
    with pytest.raises(ValueError, match="K must be"):
        Shard.parse("5/4")


def test_live_rows_are_board_row_items(feed_app: Flask, tmp_path: Path) -> None:
    worker = make_worker(feed_app, tmp_path)
    report = worker.cycle(MORNING, events(event("T12-a", 10, MORNING - 60)))
    assert report.predictions >= 1 and report.live_rows == 1
    s2 = board(feed_app, "S2")
    assert s2 is not None and s2["realtime"] is True and s2["source"] == "board"
    live = [row for row in s2["arrivals"] if row["realtime"]]
    assert [row["trip_id"] for row in live] == ["T12-a"]
    row = live[0]
    # the same row the Python board code would render for this prediction: the bus left S1, the stop before S2
    # (no stop between), S1 and S2 being SH12's first and third points
    at = dt.datetime.fromisoformat(row["predicted_time"])
    shape = np.array(SHAPE_SH12[:3])
    expected = worker.catalog.board_row(PredictedArrival(
        trip_id="T12-a", stop_id="S2", stop_sequence=20, service_date=dt.date(2026, 3, 10), predicted=at,
        scheduled=dt.datetime(2026, 3, 10, 8, 5, tzinfo=ALMATY), vehicle_id="BUS-1",
        observed_at=dt.datetime.fromtimestamp(MORNING, ALMATY),
        scheduled_departure=dt.datetime(2026, 3, 10, 8, 5, tzinfo=ALMATY), stops_away=0,
        distance_m=float(cumulative_distance_m(shape[:, 0], shape[:, 1])[-1])),
        now=dt.datetime.fromtimestamp(MORNING, ALMATY))
    assert row == expected.item(dt.datetime.fromtimestamp(MORNING, ALMATY), ALMATY)
    assert row["status"] == "live" and row["schedule_deviation_s"] == 30
    # the bus left S1 a minute late, so the deviation baseline carries it to S2
    assert at == dt.datetime(2026, 3, 10, 8, 5, 30, tzinfo=ALMATY)
    scheduled = [row for row in s2["arrivals"] if not row["realtime"]]
    assert {row["trip_id"] for row in scheduled} >= {"T92-a", "T12-b"}
    assert all(row["vehicle_id"] is None and row["interval"] is None for row in scheduled)


def test_board_without_live_runs_is_timetable_only(feed_app: Flask, tmp_path: Path) -> None:
    worker = make_worker(feed_app, tmp_path)
    worker.cycle(MORNING, events(event("T12-a", 10, MORNING - 60)))
    s1 = board(feed_app, "S1")
    assert s1 is not None and s1["realtime"] is False
    assert [row["trip_id"] for row in s1["arrivals"]][:1] == ["T12-b"]  # T12-a has left S1: no row for it


def test_changed_stops_are_announced_once(feed_app: Flask, tmp_path: Path) -> None:
    worker = make_worker(feed_app, tmp_path)
    pubsub = get_redis(feed_app).pubsub()
    pubsub.subscribe(board_channel("S2"))
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"
    worker.cycle(MORNING, events(event("T12-a", 10, MORNING - 90)))  # on time: due at S2 in 3.5 min
    first = _next_message(pubsub)
    assert first is not None and first["data"].decode().startswith('W/"')
    worker.cycle(MORNING + 20)  # nothing new, still 3 minutes away: the same content
    assert _next_message(pubsub, 0.3) is None
    worker.cycle(MORNING + 5, events(event("T12-a", 20, MORNING + 4)))  # the bus reached S2
    assert _next_message(pubsub) is not None


def _next_message(pubsub: Any, timeout: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.05)
        if message is not None:
            return message
    return None


def test_two_shards_merge_rows_at_a_shared_stop(feed_app: Flask, tmp_path: Path) -> None:
    a = make_worker(feed_app, tmp_path, WorkerSettings(shard=R12_SHARD))
    b = make_worker(feed_app, tmp_path, WorkerSettings(shard=R92_SHARD))
    stream = events(event("T12-a", 10, MORNING - 60), event("T92-a", 10, MORNING - 30, vehicle="BUS-9"))
    report_a = a.cycle(MORNING, stream)
    report_b = b.cycle(MORNING, stream)
    # no double work: each shard predicted only its own route's trip
    assert report_a.live_rows == 1 and report_b.live_rows == 0  # T92-a's only downstream stop is its last
    s2 = board(feed_app, "S2")
    assert s2 is not None
    routes = {(row["route_id"], row["realtime"]) for row in s2["arrivals"]}
    assert ("R12", True) in routes and ("R92", False) in routes  # T92-nopick (not seen) from shard b
    # shard a writes again: shard b's rows stay (no lost update), and a's row is not duplicated
    a.cycle(MORNING + 5)
    again = board(feed_app, "S2")
    assert again is not None
    assert sorted(r["trip_id"] for r in again["arrivals"]) == sorted(r["trip_id"] for r in s2["arrivals"])
    assert len({r["trip_id"] for r in again["arrivals"]}) == len(again["arrivals"])


def test_a_silent_shard_rows_expire_from_merged_boards(feed_app: Flask, tmp_path: Path) -> None:
    a = make_worker(feed_app, tmp_path, WorkerSettings(shard=R12_SHARD, ttl_s=30))
    b = make_worker(feed_app, tmp_path, WorkerSettings(shard=R92_SHARD, ttl_s=30))
    a.cycle(MORNING, events(event("T12-a", 10, MORNING - 60)))
    b.cycle(MORNING)
    assert "R92" in {r["route_id"] for r in board(feed_app, "S2")["arrivals"]}  # type: ignore[index]
    a.cycle(MORNING + 31)  # shard b has not written for longer than the TTL
    assert {r["route_id"] for r in board(feed_app, "S2")["arrivals"]} == {"R12"}  # type: ignore[index]


def test_prediction_log_samples_each_trip_once_a_minute(feed_app: Flask, tmp_path: Path) -> None:
    worker = make_worker(feed_app, tmp_path, log=True)
    assert worker.log is not None
    first = worker.cycle(MORNING, events(event("T12-a", 10, MORNING - 60)))
    worker.cycle(MORNING + 20)
    worker.cycle(MORNING + 61)
    worker.flush()
    with get_db(feed_app).session() as session:
        rows = session.scalars(select(PredictionLog).order_by(PredictionLog.made_at, PredictionLog.stop_sequence)
                               ).all()
    made = sorted({r.made_at.timestamp() if r.made_at.tzinfo else r.made_at.replace(tzinfo=dt.UTC).timestamp()
                   for r in rows})
    assert made == [MORNING, MORNING + 61]  # not at +20 s
    assert first.logged == 2  # S2 and S3 of T12-a
    row = rows[0]
    assert (row.trip_id, row.route_id, row.stop_id, row.stop_sequence, row.vehicle_id, row.predictor) == \
        ("T12-a", "R12", "S2", 20, "BUS-1", "deviation")
    assert row.service_date == dt.date(2026, 3, 10)


def test_database_source_feeds_the_worker(feed_app: Flask, tmp_path: Path) -> None:
    with get_db(feed_app).session() as session:
        feed_id = session.scalar(select(func.max(StopEvent.feed_version_id))) or 0
        from app.models import FeedVersion

        feed_id = session.scalar(select(FeedVersion.id))
        departure = dt.datetime.fromtimestamp(MORNING - 60, dt.UTC)
        session.add(StopEvent(feed_version_id=feed_id, trip_id="T12-a", service_date=dt.date(2026, 3, 10),
                              stop_sequence=10, stop_id="S1", vehicle_id="BUS-3",
                              arrival_at=departure - dt.timedelta(seconds=20), departure_at=departure,
                              scheduled_arrival_at=departure, scheduled_departure_at=departure, deviation_s=60,
                              passed_between_pings=False))
        session.commit()
    worker: Worker = make_worker(feed_app, tmp_path)
    source = DatabaseSource(get_db(feed_app).session, int(feed_id or 0))
    stream, pings = source.poll(MORNING)
    assert list(stream["trip_id"]) == ["T12-a"] and pings.empty
    worker.cycle(MORNING, stream)
    s2 = board(feed_app, "S2")
    assert s2 is not None and [r["vehicle_id"] for r in s2["arrivals"] if r["realtime"]] == ["BUS-3"]


def test_database_source_polls_events_by_when_they_became_known(feed_app: Flask) -> None:
    """An event reaches the table a ping after its departure (minutes on a sparse feed, longer for a vehicle that
    went silent): the poll takes it by ``known_at``, so one that departed long before the last poll still comes."""
    from app.models import FeedVersion

    with get_db(feed_app).session() as session:
        feed_id = int(session.scalar(select(FeedVersion.id)) or 0)
    source = DatabaseSource(get_db(feed_app).session, feed_id)
    assert source.poll(MORNING)[0].empty
    departure = dt.datetime.fromtimestamp(MORNING - 1200, dt.UTC)
    known = dt.datetime.fromtimestamp(MORNING + 30, dt.UTC)
    with get_db(feed_app).session() as session:
        session.add(StopEvent(feed_version_id=feed_id, trip_id="T12-a", service_date=dt.date(2026, 3, 10),
                              stop_sequence=10, stop_id="S1", vehicle_id="BUS-3",
                              arrival_at=departure - dt.timedelta(seconds=20), departure_at=departure,
                              scheduled_arrival_at=departure, scheduled_departure_at=departure, deviation_s=0,
                              passed_between_pings=False, known_at=known))
        session.commit()
    stream, _ = source.poll(MORNING + 40)
    assert list(stream["trip_id"]) == ["T12-a"] and list(stream["known_at"]) == [MORNING + 30]


def test_a_newly_trained_model_replaces_the_predictor_without_a_restart(feed_app: Flask, tmp_path: Path) -> None:
    from prediction.eta.artifacts import save_model
    from prediction.eta.models import QuantileETAModel
    from tests.fixtures.features import feature_rows

    worker = make_worker(feed_app, tmp_path)
    assert worker.models is not None and worker.predictor.name == "deviation"
    worker.cycle(MORNING, events(event("T12-a", 10, MORNING - 60)))
    rows, y = feature_rows()
    model = QuantileETAModel(max_iter=5).fit(rows, y)

    def save(stamp: str) -> Path:
        return save_model(tmp_path / "models", model, worker.predictor.history, train_from="a", train_until="b",
                          feed_source="feed", feed_sha256=worker.net.feed.sha256,
                          now=dt.datetime.fromisoformat(stamp))

    first = save("2026-03-10T02:00:00+00:00")
    worker.cycle(MORNING + 30)  # checked less than a minute ago: not seen yet
    assert worker.predictor.name == "deviation"
    report = worker.cycle(MORNING + 61)
    assert worker.predictor.file == first.name and worker.predictor.estimator is not model  # loaded from the file
    assert report.predictions >= 1 and board(feed_app, "S2") is not None
    broken = save("2026-03-10T03:00:00+00:00")
    broken.write_bytes(b"not a pickle")  # a failed load keeps the current model
    worker.cycle(MORNING + 122)
    assert worker.predictor.file == first.name and any("cannot load" in e for e in worker.models.errors)
    newest = save("2026-03-10T04:00:00+00:00")
    worker.cycle(MORNING + 183)
    assert worker.predictor.file == newest.name


def test_an_unchanged_board_lost_from_redis_is_written_again(feed_app: Flask, tmp_path: Path) -> None:
    worker = make_worker(feed_app, tmp_path)
    worker.cycle(MORNING, events(event("T12-a", 10, MORNING - 90)))
    first = read_board(get_redis(feed_app), "S2")
    assert first is not None
    worker.cycle(MORNING + 20)  # the same rows: only the TTL is refreshed, the stored board is the same
    again = read_board(get_redis(feed_app), "S2")
    assert again is not None and (again.body, again.version) == (first.body, first.version)
    get_redis(feed_app).delete(board_key("S2"))  # e.g. Redis restarted empty
    worker.cycle(MORNING + 25)
    restored = read_board(get_redis(feed_app), "S2")
    assert restored is not None and restored.etag == first.etag and restored.version > first.version


def test_a_newly_activated_feed_replaces_the_worker_without_a_restart(feed_app: Flask, tmp_path: Path) -> None:
    from app.schedule.importer import activate_feed_version, import_feed
    from app.worker.cli import FeedReloader
    from tests.conftest import DEMO_FEED

    worker = make_worker(feed_app, tmp_path)
    first = worker.catalog.feed_id
    source = DatabaseSource(get_db(feed_app).session, first)
    assert FeedReloader(feed_app, tmp_path / "models", WorkerSettings(), None).check(worker, source) is None  # < 60 s
    feeds = FeedReloader(feed_app, tmp_path / "models", WorkerSettings(), None, every_s=0.0)
    assert feeds.check(worker, source) is None  # the same feed is still active
    import_feed(get_db(feed_app), DEMO_FEED, label="almaty", canonical=False)
    fresh = feeds.check(worker, source)
    assert isinstance(fresh, Worker) and fresh.catalog.feed_id != first
    assert source.feed_version_id == fresh.catalog.feed_id and len(fresh.net.trip_ids) > len(worker.net.trip_ids)
    activate_feed_version(get_db(feed_app), first)  # a rollback is a change too
    back = feeds.check(fresh, source)
    assert isinstance(back, Worker) and back.catalog.feed_id == first == source.feed_version_id


def test_live_events_are_known_since_their_stored_known_at(feed_app: Flask, tmp_path: Path) -> None:
    """An event with a stored ``known_at`` (when the AVL service emitted it) counts as known since then, not since
    the cycle that took it in; without one, or one in the cycle's future, since the cycle."""
    worker: Worker = make_worker(feed_app, tmp_path)
    frame = events(event("T12-a", 10, MORNING - 300), event("T12-a", 20, MORNING - 200),
                   event("T12-a", 30, MORNING - 100)).assign(known_at=[MORNING - 240, float("nan"), MORNING + 50])
    assert worker.events.add(frame, known_at=MORNING) == 3
    known, runs = worker.events.known_events(MORNING)
    assert sorted(known.known_at[known.run == 0].tolist()) == [MORNING - 240, MORNING, MORNING]
    assert runs.known_at.tolist() == [MORNING]
