"""AVL administration and history: vehicle registration (and ingest rejecting the unregistered), the stop-event
queries of ``GET /api/v1/avl/events``, dropping old pings, and the pings request body in OpenAPI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select, text

from app import get_db
from app.avl.context import get_avl
from app.avl.store import PartitionSet
from app.models import Ping, StopEvent, Vehicle
from tests.fixtures.avl import NOW, ON_ROUTE, frame

EVENTS = "/api/v1/avl/events"


def test_registered_vehicles_are_listed_and_only_they_may_ping(avl_app: Flask, runner: FlaskCliRunner) -> None:
    empty = runner.invoke(args=["avl", "vehicles", "list"])
    assert empty.exit_code == 0 and "no vehicles registered" in empty.output
    first = runner.invoke(args=["avl", "vehicles", "register", "bus-1", "--label", "Fleet 101"])
    assert first.exit_code == 0 and "registered bus-1" in first.output
    assert runner.invoke(args=["avl", "vehicles", "register", "bus-2", "bus-3"]).exit_code == 0
    bad = runner.invoke(args=["avl", "vehicles", "register", "x" * 65])
    assert bad.exit_code != 0 and "1 to 64 characters" in bad.output
    listed = runner.invoke(args=["avl", "vehicles", "list"]).output.splitlines()
    assert listed == ["bus-1\tactive\tFleet 101", "bus-2\tactive\t", "bus-3\tactive\t"]
    assert runner.invoke(args=["avl", "vehicles", "deactivate", "bus-3"]).exit_code == 0
    missing = runner.invoke(args=["avl", "vehicles", "deactivate", "bus-9"])
    assert missing.exit_code != 0 and "not registered: bus-9" in missing.output
    lat, lon = ON_ROUTE
    rows: list[dict[str, object]] = [{"vehicle_id": v, "t": NOW - 10, "latitude": lat, "longitude": lon}
                                     for v in ("bus-1", "bus-3", "bus-7")]
    with get_db(avl_app).session() as session:
        report = get_avl(avl_app).ingest(session, frame(rows), "api", now=NOW)
    assert report.stored == 1 and report.rejected["unknown_vehicle"] == 2
    with get_db(avl_app).session() as session:
        assert session.scalars(select(Ping.vehicle_id)).all() == ["bus-1"]
        assert session.get(Vehicle, "bus-3").active is False  # type: ignore[union-attr]


def test_stored_events_by_trip_run_and_by_stop_window(avl_app: Flask, runner: FlaskCliRunner, client: FlaskClient,
                                                      avl_day_pings: Path) -> None:
    assert runner.invoke(args=["avl", "ingest", "--pings", str(avl_day_pings)]).exit_code == 0
    with get_db(avl_app).session() as session:
        stored = session.scalars(select(StopEvent).order_by(StopEvent.arrival_at)).all()
        trip, day = stored[len(stored) // 2].trip_id, stored[len(stored) // 2].service_date
        n_trip = sum(1 for e in stored if e.trip_id == trip and e.service_date == day)
        stop = stored[0].stop_id
        at_stop = [e for e in stored if e.stop_id == stop]
    run = client.get(EVENTS, query_string={"trip_id": trip, "service_date": day.isoformat()})
    assert run.status_code == 200, run.get_json()
    events = run.get_json()["events"]
    assert len(events) == n_trip > 3
    assert [e["stop_sequence"] for e in events] == sorted(e["stop_sequence"] for e in events)
    first = events[0]
    assert first["arrival_time"].endswith("+05:00")  # the agency's zone
    late = (dt.datetime.fromisoformat(first["arrival_time"])
            - dt.datetime.fromisoformat(first["scheduled_arrival_time"])).total_seconds()
    assert abs(late - first["deviation_s"]) <= 1
    start = at_stop[0].arrival_at
    start = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
    window = {"stop_id": stop, "from": start.isoformat(), "to": (start + dt.timedelta(hours=1)).isoformat()}
    found = client.get(EVENTS, query_string=window).get_json()["events"]
    expected = [e for e in at_stop if (e.arrival_at if e.arrival_at.tzinfo else e.arrival_at.replace(tzinfo=dt.UTC))
                < start + dt.timedelta(hours=1)]
    assert len(found) == len(expected) >= 1 and all(e["stop_id"] == stop for e in found)
    times = [e["arrival_time"] for e in found]
    assert times == sorted(times)


def test_event_queries_name_the_bad_parameter(avl_app: Flask, client: FlaskClient) -> None:
    cases = [({}, "trip_id"), ({"trip_id": "R12-0-001"}, "service_date"),
             ({"trip_id": "R12-0-001", "service_date": "03/03/2026"}, "service_date"),
             ({"stop_id": "S0", "from": "2026-03-03T08:00:00+05:00"}, "to"),
             ({"stop_id": "S0", "from": "2026-03-03T08:00:00", "to": "2026-03-03T09:00:00+05:00"}, "from"),
             ({"stop_id": "S0", "from": "2026-03-03T08:00:00+05:00", "to": "2026-03-09T08:00:00+05:00"}, "to"),
             ({"trip_id": "R12-0-001", "service_date": "2026-03-03", "limit": "0"}, "limit")]
    for query, field in cases:
        response = client.get(EVENTS, query_string=query)
        assert response.status_code == 400, query
        assert response.get_json()["error"]["field"] == field, query
    none = client.get(EVENTS, query_string={"trip_id": "nope", "service_date": "2026-03-03"})
    assert none.status_code == 200 and none.get_json() == {"events": []}


def test_prune_drops_old_days_and_keeps_recent_ones(avl_app: Flask, runner: FlaskCliRunner) -> None:
    lat, lon = ON_ROUTE
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    times = [(today - dt.timedelta(days=back, hours=-1)).timestamp() for back in (0, 1, 5, 9)]
    rows: list[dict[str, object]] = [{"vehicle_id": "bus-1", "t": t, "latitude": lat, "longitude": lon}
                                     for t in times]
    from app.avl.ingest import IngestSettings

    with get_db(avl_app).session() as session:
        report = get_avl(avl_app).ingest(session, frame(rows), "csv", now=times[0] + 60,
                                          settings=IngestSettings(max_age_s=None))
    assert report.stored == 4
    result = runner.invoke(args=["avl", "prune", "--keep-days", "2"])
    assert result.exit_code == 0, result.output
    with get_db(avl_app).session() as session:
        left = sorted(a if a.tzinfo else a.replace(tzinfo=dt.UTC) for a in session.scalars(select(Ping.recorded_at)))
        postgres = session.get_bind().dialect.name == "postgresql"
        if postgres:
            parts = session.scalars(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                         "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'avl_pings'"))
            names = set(parts)
            days = [f"avl_pings_p{dt.datetime.fromtimestamp(t, dt.UTC):%Y%m%d}" for t in times]
            assert set(days[:2]) <= names and not set(days[2:]) & names
    assert [a.timestamp() for a in left] == sorted(times[:2])
    assert ("day partition(s)" if postgres else "2 row(s) deleted") in result.output
    assert isinstance(get_avl(avl_app).partitions, PartitionSet)
    bad = runner.invoke(args=["avl", "prune", "--keep-days", "0"])
    assert bad.exit_code != 0 and "--keep-days" in bad.output


def test_openapi_publishes_the_pings_body_and_event_queries(avl_app: Flask, client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    post = doc["paths"]["/api/v1/avl/pings"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PingBatch"}
    ping = doc["components"]["schemas"]["Ping"]
    assert set(ping["required"]) == {"vehicle_id", "timestamp", "latitude", "longitude"}
    get = doc["paths"]["/api/v1/avl/events"]["get"]
    assert {p["name"] for p in get["parameters"]} == {"trip_id", "service_date", "stop_id", "from", "to", "limit"}
    assert pd.notna(get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"])
