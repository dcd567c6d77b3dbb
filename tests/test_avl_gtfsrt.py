"""GTFS-realtime VehiclePositions: the real USF BullRunner message decodes and ingests, files and polled URLs go
through the same service, and a malformed message is a clear error that stores nothing."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from google.transit import gtfs_realtime_pb2

from app import get_db
from app.avl.gtfsrt import GtfsRtError, decode_vehicle_positions
from app.models import Ping
from app.schedule.importer import import_feed
from tests.fixtures.avl import ON_ROUTE, count, rejections

USF = Path("gtfs-rt") / "usf_bullrunner_2017"
HEADER_T = 1_772_500_000


def message(*positions: tuple[str, float, float, int]) -> bytes:
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.timestamp = HEADER_T
    for i, (vehicle, lat, lon, t) in enumerate(positions):
        entity = feed.entity.add(id=str(i))
        entity.vehicle.vehicle.id = vehicle
        entity.vehicle.position.latitude = lat
        entity.vehicle.position.longitude = lon
        entity.vehicle.timestamp = t
    entity = feed.entity.add(id="no-position")
    entity.vehicle.vehicle.id = "bus-9"
    payload: bytes = feed.SerializeToString()
    return payload


def test_usf_bullrunner_message_decodes_and_ingests(app: Flask, runner: FlaskCliRunner, shared_data: Path) -> None:
    folder = shared_data / USF
    positions = decode_vehicle_positions((folder / "bullrunner-vehicle-positions").read_bytes(), "usf")
    assert len(positions.pings) == 10 and positions.header_timestamp == 1505314375
    assert set(positions.pings["route_id"]) <= set("ABCDEFGHI")
    import_feed(get_db(app), folder / "bullrunner-gtfs.zip", canonical=False)
    result = runner.invoke(args=["avl", "ingest-gtfsrt", str(folder / "bullrunner-vehicle-positions")])
    assert result.exit_code == 0, result.output
    assert "10 of 10 pings stored" in result.output  # every bus is on a BullRunner route
    assert count(app, Ping) == 10


def test_file_positions_are_validated_against_the_header_time(avl_app: Flask, runner: FlaskCliRunner,
                                                              tmp_path: Path) -> None:
    lat, lon = ON_ROUTE
    path = tmp_path / "vp.pb"
    path.write_bytes(message(("bus-1", lat, lon, HEADER_T - 20), ("bus-2", lat, lon, HEADER_T - 7200),
                             ("bus-3", lat, lon, HEADER_T + 600), ("bus-4", 51.13, 71.43, HEADER_T)))
    result = runner.invoke(args=["avl", "ingest-gtfsrt", str(path)])
    assert result.exit_code == 0, result.output
    assert count(avl_app, Ping) == 1
    assert rejections(avl_app) == {"stale_timestamp": 1, "future_timestamp": 1, "far_from_routes": 1,
                                    "no_position": 1}


@pytest.mark.parametrize("payload", [b"\x08\x96\x01garbage\xff\xff", b"", b"<html>502 Bad Gateway</html>"])
def test_malformed_protobuf_is_a_clear_error_and_stores_nothing(avl_app: Flask, runner: FlaskCliRunner,
                                                               tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "bad.pb"
    path.write_bytes(payload)
    with pytest.raises(GtfsRtError, match="not a GTFS-realtime FeedMessage"):
        decode_vehicle_positions(payload, str(path))
    result = runner.invoke(args=["avl", "ingest-gtfsrt", str(path)])
    assert result.exit_code != 0 and "not a GTFS-realtime FeedMessage" in result.output
    assert "nothing was stored" in result.output
    assert count(avl_app, Ping) == 0 and rejections(avl_app) == {}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, list[bytes]]]:
    """A local HTTP server answering each GET with the next payload of a list."""
    payloads: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = payloads.pop(0) if payloads else b""
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/vp.pb", payloads
    server.shutdown()
    thread.join()


def test_polling_a_url_ingests_each_poll_and_survives_a_bad_one(avl_app: Flask, runner: FlaskCliRunner,
                                                                served: tuple[str, list[bytes]]) -> None:
    url, payloads = served
    lat, lon = ON_ROUTE
    payloads.extend([message(("bus-1", lat, lon, HEADER_T)), b"not protobuf at all",
                     message(("bus-1", lat, lon, HEADER_T), ("bus-2", lat, lon, HEADER_T))])
    result = runner.invoke(args=["avl", "ingest-gtfsrt", url, "--interval", "1", "--polls", "3"])
    assert result.exit_code == 0, result.output
    assert "poll failed" in result.output and "not a GTFS-realtime FeedMessage" in result.output
    assert count(avl_app, Ping) == 2
    assert rejections(avl_app)["duplicate"] == 1
