"""The worker's array-to-wire TripUpdates encoder gives the same message as building it with the protobuf API
(``trip_update_entities``): duplicates dropped, unknown ids left out, times nudged to increase, intervals as
uncertainty."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from google.transit import gtfs_realtime_pb2 as rt

from app.realtime.catalog import StaticCatalog
from app.realtime.gtfs_rt import trip_update_entities
from app.realtime.trip_updates import TripUpdateEncoder, varint
from prediction.gtfs.schedule import read_schedule
from prediction.network import Network, build_network
from prediction.sim.synth import write_synthetic_feed


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Network, StaticCatalog]:
    folder: Path = tmp_path_factory.mktemp("city")
    write_synthetic_feed(folder, routes=3, seed=1)
    feed = read_schedule(folder, canonical=False)
    return build_network(feed), StaticCatalog.from_schedule(feed)


def test_varint() -> None:
    assert varint(0) == b"\x00" and varint(1) == b"\x01" and varint(300) == b"\xac\x02"
    for value in (127, 128, 16_383, 16_384, 1_772_506_817, 2**40 + 5):
        encoded = rt.TripUpdate.StopTimeEvent(time=value).SerializeToString()
        assert encoded == b"\x10" + varint(value)


@pytest.mark.parametrize("with_interval", [True, False])
def test_encoder_matches_the_protobuf_api(city: tuple[Network, StaticCatalog], with_interval: bool) -> None:
    net, catalog = city
    rng = np.random.default_rng(3)
    trips = rng.choice(len(net.trip_ids), 12, replace=False)
    trip, visit = [], []
    for t in trips.tolist():
        lo, hi = int(net.visit_ptr[t]), int(net.visit_ptr[t + 1])
        trip += [t] * (hi - lo)
        visit += list(range(lo, hi))
    trip_a, visit_a = np.array(trip + trip[:5]), np.array(visit + visit[:5])  # five duplicated stop calls
    n = len(trip_a)
    order = rng.permutation(n)
    trip_a, visit_a = trip_a[order], visit_a[order]
    predicted = 1_772_500_000 + rng.uniform(0, 3600, n)  # unsorted: later stops are clamped
    lower, upper = (predicted - rng.uniform(0, 300, n), predicted + rng.uniform(0, 300, n)) if with_interval \
        else (None, None)
    dates = np.array(["20260303" if i % 3 else "20260304" for i in range(n)], dtype=object)
    vehicles = np.array([None if t % 2 else f"bus-{t}" for t in trip_a.tolist()], dtype=object)
    observed = 1_772_499_000 + rng.uniform(0, 600, n)
    stop_ids = net.stop_ids[net.visit_stop[visit_a]].tolist()
    catalog.stops.pop(stop_ids[0], None)  # a stop the static feed does not know: its updates are left out
    expected = trip_update_entities(catalog, net.trip_ids[trip_a].tolist(), dates.tolist(), net.visit_seq[visit_a],
                                    stop_ids, predicted, lower, upper, vehicles.tolist(), observed)
    got = rt.FeedMessage()
    got.ParseFromString(TripUpdateEncoder(catalog, net).encode(trip_a, dates, visit_a, predicted, lower, upper,
                                                               vehicles, observed))
    assert len(got.entity) == len(expected.entity) > 12  # two service dates for most trips
    assert got == expected
    updates = [u for e in got.entity for u in e.trip_update.stop_time_update]
    assert stop_ids[0] not in {u.stop_id for u in updates}
    assert all(u.HasField("arrival") and u.departure.time == u.arrival.time for u in updates)
    assert any(u.arrival.uncertainty > 0 for u in updates) == with_interval
    assert all(u.HasField("schedule_relationship") for u in updates)  # written out (W009)
    for entity in got.entity:  # backwards predictions nudged: strictly increasing within a trip (E022)
        times = [u.arrival.time for u in entity.trip_update.stop_time_update]
        assert all(later > earlier for earlier, later in pairwise(times))


def test_nothing_known_encodes_nothing(city: tuple[Network, StaticCatalog]) -> None:
    net, catalog = city
    empty = np.zeros(0, dtype=np.int64)
    assert TripUpdateEncoder(catalog, net).encode(empty, np.zeros(0, dtype=object), empty, np.zeros(0), None, None,
                                                  np.zeros(0, dtype=object), np.zeros(0)) == b""
