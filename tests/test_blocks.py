"""Next trips: the feed's blocks kept as they are, blocks inferred by layover rules where a feed has none, and the
inference checked against which trip Austin's real buses ran next."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.blocks import hide_blocks, observed_pairs, scores_on_blocks, scores_on_observed, services_from_days
from prediction.gtfs.blocks import blocks_inferred, next_trips
from prediction.gtfs.schedule import read_schedule
from prediction.network import Network, build_network

# stop -> (lat, lon): terminals A, B, C and D/E several km apart; B2 150 m from B; P1 and P2 1 km apart in station P
_M_PER_DEG = 111_195.0
STOPS = {"A": (43.20, 76.90), "B": (43.25, 76.90), "B2": (43.25 + 150 / _M_PER_DEG, 76.90), "C": (43.20, 76.97),
         "D": (43.30, 76.80), "E": (43.35, 76.80), "P1": (43.10, 76.90), "P2": (43.10 + 1000 / _M_PER_DEG, 76.90),
         "Q": (43.05, 76.90)}
# trip -> (route, service, block or "", [(stop, "HH:MM")...])
Trip = tuple[str, str, str, list[tuple[str, str]]]
TERMINALS: dict[str, Trip] = {
    "a1": ("R1", "WD", "", [("A", "06:00"), ("B", "06:30")]),
    "b0": ("R1", "WD", "", [("B", "06:20"), ("A", "06:50")]),  # leaves B before a1 arrives there
    "b1": ("R1", "WD", "", [("B", "06:40"), ("A", "07:10")]),  # 10 min after a1: a1's next trip
    "a2": ("R1", "WD", "", [("A", "07:00"), ("B", "07:30")]),  # 10 min after b0
    "b2": ("R1", "WD", "", [("B2", "07:40"), ("A", "08:10")]),  # from the stop across the street from B
    "a4": ("R1", "WD", "", [("A", "07:05"), ("B", "07:45")]),  # leaves A before b1 arrives there
    "b3": ("R1", "WD", "", [("B", "09:00"), ("A", "09:30")]),  # 75 min after a4: a depot run, not a layover
    "c1": ("R1", "WD", "", [("C", "07:20"), ("A", "07:50")]),  # starts at another terminal than b1 ended at
    "x1": ("R2", "WD", "", [("A", "07:20"), ("C", "07:50")]),  # where b1 ends, but another route
    "p1": ("R3", "WD", "", [("D", "06:00"), ("E", "06:30")]),
    "p2": ("R3", "WD", "", [("D", "06:10"), ("E", "06:40")]),
    "q1": ("R3", "WD", "", [("E", "06:45"), ("D", "07:15")]),
    "q2": ("R3", "WD", "", [("E", "06:50"), ("D", "07:20")]),
    "s1": ("R4", "WD", "", [("Q", "06:00"), ("P1", "06:30")]),
    "s2": ("R4", "WD", "", [("P2", "06:40"), ("Q", "07:10")]),  # 1 km away, but in the same station as P1
    "w1": ("R1", "SA", "", [("A", "06:00"), ("B", "06:30")]),
}
WITH_BLOCKS: dict[str, Trip] = {
    "k2": ("R2", "WD", "K", [("C", "09:00"), ("A", "09:30")]),  # listed first; far away and 2 h after k1
    "k1": ("R1", "WD", "K", [("A", "06:00"), ("B", "06:30")]),
    "k3": ("R1", "WD", "K", [("A", "11:00"), ("B", "11:30")]),
    "ks": ("R1", "SA", "K", [("B", "06:40"), ("A", "07:10")]),  # same block id, another service
    "m1": ("R1", "WD", "M", [("B", "06:40"), ("A", "07:10")]),
}


def write_feed(folder: Path, trips: dict[str, Trip]) -> Network:
    folder.mkdir(parents=True, exist_ok=True)
    stops = ["stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station", "P,Station P,43.1045,76.9,1,"]
    stops += [f"{s},Stop {s},{lat:.6f},{lon:.6f},0,{'P' if s.startswith('P') else ''}"
              for s, (lat, lon) in STOPS.items()]
    routes = sorted({route for route, *_ in trips.values()})
    times = []
    for trip, (_, _, _, visits) in trips.items():
        times += [f"{trip},{t}:00,{t}:00,{stop},{seq}" for seq, (stop, t) in enumerate(visits, start=1)]
    files = {
        "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,Bus,https://example.kz,Asia/Almaty\n",
        "stops.txt": "\n".join(stops),
        "routes.txt": "route_id,agency_id,route_short_name,route_type\n" + "\n".join(f"{r},A,{r},3" for r in routes),
        "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                        "WD,1,1,1,1,1,0,0,20260101,20271231\nSA,0,0,0,0,0,1,0,20260101,20271231",
        "trips.txt": "route_id,service_id,trip_id,block_id\n" + "\n".join(
            f"{route},{service},{trip},{block}" for trip, (route, service, block, _) in trips.items()),
        "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n" + "\n".join(times),
    }
    for name, text in files.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
    return build_network(read_schedule(folder, canonical=False))


def successors(net: Network) -> dict[str, str | None]:
    following = next_trips(net)
    return {str(trip): None if after < 0 else str(net.trip_ids[after])
            for trip, after in zip(net.trip_ids, following, strict=True)}


def test_inferred_chains_follow_the_layover_rules(tmp_path: Path) -> None:
    net = write_feed(tmp_path / "feed", TERMINALS)
    assert blocks_inferred(net)
    assert successors(net) == {
        "a1": "b1",  # b0 leaves too early, b3 too late, c1 elsewhere
        "b0": "a2", "a2": "b2",  # b2 leaves from the stop 150 m from where a2 ended
        "b1": None,  # x1 leaves from A soon after, but on another route; c1 from another terminal
        "a4": None,  # b3 leaves more than an hour later
        "b2": None, "b3": None, "c1": None, "x1": None,
        "p1": "q1", "p2": "q2",  # first in, first out: the bus that arrived first leaves first
        "q1": None, "q2": None,
        "s1": "s2",  # the same parent station
        "s2": None,
        "w1": None,  # Saturday's trip does not chain into weekday trips
    }


def test_feed_blocks_are_followed_as_given(tmp_path: Path) -> None:
    net = write_feed(tmp_path / "feed", WITH_BLOCKS)
    assert not blocks_inferred(net)
    # by scheduled start within block and service, whatever the routes, gaps and places; no layover rule applies
    assert successors(net) == {"k1": "k2", "k2": "k3", "k3": None, "ks": None, "m1": None}
    hidden = successors(hide_blocks(net))
    assert hidden["k1"] == "m1"  # without the blocks, the layover rules decide


def test_trips_without_a_block_are_inferred_beside_blocked_ones(tmp_path: Path) -> None:
    net = write_feed(tmp_path / "feed", {**WITH_BLOCKS, "a1": TERMINALS["a1"], "b1": TERMINALS["b1"]})
    assert blocks_inferred(net)
    found = successors(net)
    assert found["a1"] == "b1" and found["k1"] == "k2"  # m1 has a block, so a1's bus cannot be inferred into it


@pytest.mark.slow
def test_austin_inferred_pairs_are_what_real_buses_ran(shared_data: Path) -> None:
    """Measured with bench/blocks.py: as the feed is, precision 0.551 and recall 0.512 over 8,490 observed pairs
    (its one all-week service mixes weekday and weekend timetables); with each trip's service the days it ran,
    0.896 and 0.835. The floors sit well below, so only broken inference fails."""
    net = build_network(read_schedule(shared_data / "gtfs" / "austin_capmetro_2016.zip", canonical=False))
    observed = observed_pairs(net, sorted((shared_data / "avl" / "austin_capmetro_2016").glob("pings_*.csv")))
    precision, recall, pairs = scores_on_observed(next_trips(net), observed)
    assert pairs > 8000 and precision > 0.45 and recall > 0.40
    precision, recall, _ = scores_on_observed(next_trips(services_from_days(net, observed)), observed)
    assert precision > 0.8 and recall > 0.75


@pytest.mark.slow
def test_hart_hidden_blocks_are_mostly_recovered(shared_data: Path) -> None:
    """Measured with bench/blocks.py: precision 0.868 and recall 0.865 over HART's 4,135 block pairs."""
    net = build_network(read_schedule(shared_data / "gtfs" / "hart_tampa_2016.zip", canonical=False))
    precision, recall, pairs = scores_on_blocks(next_trips(hide_blocks(net)), next_trips(net))
    assert pairs > 4000 and precision > 0.78 and recall > 0.78
