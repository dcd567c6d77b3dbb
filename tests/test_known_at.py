"""Honest replay: every stop event's ``known_at`` is the time of the ping whose arrival makes the live follower
emit it, checked by feeding real Austin pings and simulated Almaty pings one at a time, as the tracker does; and
the backtest replays the ``known_at`` stored in ``avl_stop_events``."""

from __future__ import annotations

import datetime as dt
import heapq
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prediction.avl.avlio import read_pings
from prediction.avl.events import EVENT_FIELDS, EventContext, VehicleFollower, derive_events, resolve_start_dates
from prediction.gtfs.schedule import read_schedule
from prediction.network import Network, build_network
from prediction.sim.simulate import CitySimulator

EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
DEMO_FEED = Path(__file__).resolve().parent.parent / "gtfs_data" / "almaty"


def _one_at_a_time(net: Network, pings: pd.DataFrame) -> pd.DataFrame:
    """The events of ``pings`` fed one at a time in the feed's time order, each with ``emitted``: the time of the
    ping whose arrival returned it (a vehicle's own ping, or any vehicle's for a silent one, which the feed's
    clock expires as ``TripTracker`` does); a run still open after the last ping closes at the silence limit."""
    frame = pings.sort_values(["t", "vehicle_id"], kind="stable").drop_duplicates(["vehicle_id", "t"])
    frame = frame.reset_index(drop=True)
    frame["start_date"] = resolve_start_dates(frame, net)
    ctx = EventContext(net)
    silence = ctx.cfg.silence_s
    vehicles = frame["vehicle_id"].astype(str).to_numpy()
    t = frame["t"].to_numpy(dtype=float)
    lat, lon = frame["latitude"].to_numpy(dtype=float), frame["longitude"].to_numpy(dtype=float)
    trips = frame["trip_id"].astype(object).where(frame["trip_id"].notna(), None).to_numpy()
    dates = frame["start_date"].astype(object).where(frame["start_date"].notna(), None).to_numpy()
    followers: dict[str, VehicleFollower] = {}
    deadlines: list[tuple[float, str]] = []
    rows: list[tuple[object, ...]] = []
    for i, vehicle in enumerate(vehicles.tolist()):
        follower = followers.setdefault(vehicle, VehicleFollower(ctx, vehicle))
        one = slice(i, i + 1)
        rows.extend((*event, t[i]) for event in follower.feed(t[one], lat[one], lon[one], trips[one], dates[one]))
        heapq.heappush(deadlines, (t[i] + silence, vehicle))
        while deadlines and deadlines[0][0] < t[i]:
            rows.extend((*event, t[i]) for event in followers[heapq.heappop(deadlines)[1]].expire(t[i]))
    for follower in followers.values():
        assert follower.last is not None
        rows.extend((*event, follower.last[0] + silence) for event in follower.close())
    return pd.DataFrame(rows, columns=[*EVENT_FIELDS, "emitted"])


def _check(net: Network, pings: pd.DataFrame) -> pd.DataFrame:
    """Every event is stamped with its emission, and ``derive_events`` (batches, one process) gives those rows."""
    fed = _one_at_a_time(net, pings)
    assert len(fed) > 1000
    late = fed[fed["known_at"] != fed["emitted"]]
    assert late.empty, f"{len(late)} of {len(fed)} events stamped before (or after) their emission:\n{late.head()}"
    assert (fed["known_at"] >= fed["departure"]).all()
    derived = derive_events(net, pings, workers=1)
    assert len(derived) >= 0.99 * len(fed)  # runs claimed by two vehicles keep one vehicle's events
    found = derived.merge(fed, on=list(EVENT_FIELDS), how="left", indicator=True)
    assert (found["_merge"] == "both").all()
    return fed


def _seconds(text: pd.Series) -> pd.Series:
    return (pd.to_datetime(text, utc=True, format="ISO8601") - EPOCH).dt.total_seconds()


@pytest.mark.slow
def test_austin_events_are_known_when_the_live_follower_emits_them(shared_data: Path) -> None:
    """A whole day of real Austin pings (2 to 4 minutes apart, and a feed outage of hours in the afternoon)."""
    net = build_network(read_schedule(shared_data / "gtfs" / "austin_capmetro_2016.zip", canonical=False))
    pings = read_pings([shared_data / "avl" / "austin_capmetro_2016" / "pings_2016-12-16.csv"]).pings
    fed = _check(net, pings)
    # the outage closes runs as silent: the first ping after it releases their events, hours after the last
    assert ((fed["emitted"] - fed["departure"]) > 3600.0).sum() >= 50


def test_simulated_almaty_events_are_known_when_the_live_follower_emits_them() -> None:
    """Simulated 30 s pings of the demo feed, a sample of its vehicles."""
    net = build_network(read_schedule(DEMO_FEED, canonical=False))
    pings = CitySimulator(net, seed=5).run_day(dt.date(2026, 3, 3), ping_interval_s=30.0).pings
    sample = pd.Series(pings["vehicle_id"].unique()).sample(n=40, random_state=2)
    pings = pings[pings["vehicle_id"].isin(sample)]
    _check(net, pings.assign(t=_seconds(pings["timestamp"])))


def test_a_silent_vehicle_leaves_its_run_at_the_feed_clock() -> None:
    """``expire`` does nothing within the silence limit; past it the run closes, stamped with the clock's time,
    and later pings of that run no longer reopen it."""
    net = build_network(read_schedule(DEMO_FEED, canonical=False))
    pings = CitySimulator(net, seed=5).run_day(dt.date(2026, 3, 3), ping_interval_s=30.0).pings
    pings = pings.assign(t=_seconds(pings["timestamp"]))
    bus = pings[pings["vehicle_id"] == pings["vehicle_id"].iloc[0]]
    run = bus[bus["trip_id"] == bus["trip_id"].iloc[0]]
    columns = (run["t"].to_numpy(dtype=float), run["latitude"].to_numpy(dtype=float),
               run["longitude"].to_numpy(dtype=float), run["trip_id"].to_numpy(dtype=object),
               run["start_date"].to_numpy(dtype=object))
    ctx = EventContext(net)
    scout = VehicleFollower(ctx, "scout")
    releases = [i for i in range(len(run)) if scout.feed(*(column[i:i + 1] for column in columns))]
    cut = releases[len(releases) // 2]  # the ping before it holds events back until it is decided
    follower = VehicleFollower(ctx, "bus")
    assert follower.feed(*(column[:cut] for column in columns)) != []
    last = float(columns[0][cut - 1])
    assert follower.expire(last + ctx.cfg.silence_s) == []
    closed = follower.expire(last + ctx.cfg.silence_s + 7.0)
    assert closed and {event[-1] for event in closed} == {last + ctx.cfg.silence_s + 7.0}
    assert follower.run is None and follower.close() == []
    assert follower.feed(*(column[cut:] for column in columns)) == [] and follower.run is None


def test_the_backtest_reads_known_at_back_from_the_event_table(tmp_path: Path) -> None:
    """``qala backtest`` stores the events in ``avl_stop_events`` and replays what it reads back: the stored
    ``known_at``, not one worked out again from the pings."""
    from app.prediction_cli import _stored_history
    from prediction.avl.avlio import write_csv
    from tests.fixtures.line_feed import write_line_feed

    feed = write_line_feed(tmp_path / "feed", last="07:00:00")
    net = build_network(read_schedule(feed, canonical=False))
    pings = CitySimulator(net, seed=5).run_day(dt.date(2026, 3, 3), ping_interval_s=20.0).pings
    write_csv(pings, tmp_path / "pings.csv")
    derived = derive_events(net, read_pings([tmp_path / "pings.csv"]).pings)
    _, known = _stored_history(f"sqlite:///{tmp_path / 'backtest.db'}", feed, (tmp_path / "pings.csv",))
    assert len(known.known_at) == len(derived) > 100
    assert abs(np.sort(known.known_at) - np.sort(derived["known_at"].to_numpy(dtype=float))).max() < 0.01
