"""The baselines as their systems compute them, on hand-made stop events along the test line: TheTransitClock's
Kalman filter (the same trip's last days, the last vehicle, the error carried from it), OneBusAway's deviation that
grows while a bus is overdue, and a bus that stands still, whose predicted arrivals move later instead of vanishing
and whose board row says for how long it has been overdue."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask import Flask

from app import get_redis
from app.realtime.store import read_board
from prediction.eta.features import KnownEvents, SegmentHistory
from prediction.eta.snapshot import LiveState
from prediction.gtfs.schedule import read_schedule
from prediction.gtfs.servicedays import service_day_start
from prediction.network import Network, build_network
from tests.fixtures.line_feed import write_line_feed
from tests.worker_feed import MORNING, add_worker_feed, event, events, make_worker

TODAY = dt.date(2026, 3, 3)
PAST = [dt.date(2026, 3, 2), dt.date(2026, 2, 27), dt.date(2026, 2, 26)]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Network:
    return build_network(read_schedule(write_line_feed(tmp_path_factory.mktemp("feed")), canonical=False))


def _origin(net: Network, day: dt.date) -> float:
    return service_day_start(day, net.tz).timestamp()


def _visit(net: Network, trip_id: str, seq_index: int) -> int:
    trip = int(np.flatnonzero(net.trip_ids == trip_id)[0])
    return int(net.visit_ptr[trip] + seq_index)


def _events(net: Network, rows: list[tuple[str, dt.date, int, float, float, float]]) -> KnownEvents:
    """Events from (trip_id, service day, stop index, departure, segment run into the stop, known_at); the arrival
    is the departure (no dwell), times in seconds after the service day's origin."""
    runs = {key: n for n, key in enumerate(dict.fromkeys((trip, day) for trip, day, *_ in rows))}
    frame = pd.DataFrame(rows, columns=["trip_id", "day", "index", "departure", "segment_run", "known_at"])
    origin = np.array([_origin(net, day) for day in frame["day"]])
    visit = np.array([_visit(net, t, i) for t, i in zip(frame["trip_id"], frame["index"], strict=True)])
    order = np.argsort(origin + frame["known_at"].to_numpy(float), kind="stable")
    departure = (origin + frame["departure"].to_numpy(float))[order]
    return KnownEvents(
        run=np.array([runs[(t, d)] for t, d in zip(frame["trip_id"], frame["day"], strict=True)])[order],
        trip=_trips(net, visit[order]),
        visit=visit[order], arrival=departure, departure=departure,
        known_at=(origin + frame["known_at"].to_numpy(float))[order], origin=origin[order],
        segment_run=frame["segment_run"].to_numpy(float)[order], headway=np.full(len(frame), np.nan),
        slot=np.full(len(frame), 6, dtype=np.int64))


def _trips(net: Network, visits: np.ndarray) -> np.ndarray:
    return (np.searchsorted(net.visit_ptr, visits, side="right") - 1).astype(np.int64)


def _history(net: Network, days: list[dt.date]) -> SegmentHistory:
    """Trip R12-0-002's run from stop 1 to stop 2 took 380, 420 and 400 s on its last three days (TheTransitClock's
    own example) and R12-0-003's 350, 370 and 360 s."""
    rows = []
    for day, a, b in zip(days, (380.0, 420.0, 400.0), (350.0, 370.0, 360.0), strict=False):
        rows += [("R12-0-002", day, 1, 6 * 3600.0, np.nan, 6 * 3600.0 + 30),
                 ("R12-0-002", day, 2, 6 * 3600.0 + a, a, 6 * 3600.0 + a + 30),
                 ("R12-0-003", day, 1, 7 * 3600.0, np.nan, 7 * 3600.0 + 30),
                 ("R12-0-003", day, 2, 7 * 3600.0 + b, b, 7 * 3600.0 + b + 30)]
    return SegmentHistory.fit(net, _events(net, rows))


T = 6 * 3600.0  # 06:00 of TODAY, in seconds after its origin
TODAY_ROWS = [  # the last vehicle (R12-0-001, no history) takes 300 s; then A (002) 330 s; then B (003) leaves
    ("R12-0-001", TODAY, 1, T + 60, np.nan, T + 90), ("R12-0-001", TODAY, 2, T + 360, 300.0, T + 390),
    ("R12-0-002", TODAY, 1, T + 600, np.nan, T + 615), ("R12-0-002", TODAY, 2, T + 930, 330.0, T + 945),
    ("R12-0-003", TODAY, 1, T + 1050, np.nan, T + 1065),
]


def _row(frame: pd.DataFrame, net: Network, trip_id: str, index: int) -> pd.Series:
    hit = frame[(frame["visit"] == _visit(net, trip_id, index)) & (frame["block_ahead"] == 0)]
    assert len(hit) == 1
    return hit.iloc[0]


def _transitclock(last: float, days: list[float], error: float) -> tuple[float, float]:
    """KalmanPrediction.predict, written out: (prediction, filter error)."""
    mean = float(np.mean(days))
    variance = float(np.mean((np.array(days) - mean) ** 2))
    gain = (error + variance) / (error + 2 * variance)
    return (1 - gain) * last + gain * mean, variance * gain


def test_kalman_follows_transitclock_and_carries_the_error_from_the_last_vehicle(net: Network) -> None:
    origin = _origin(net, TODAY)
    state = LiveState(net, _history(net, PAST), _events(net, TODAY_ROWS))
    first = state.snapshot(origin + T + 660.0)  # A left stop 1 60 s ago; the last vehicle took 300 s, no error yet
    predicted_a, error_a = _transitclock(300.0, [380.0, 420.0, 400.0], 100.0)
    assert _row(first, net, "R12-0-002", 2)["kalman_eta_s"] == pytest.approx(predicted_a - 60.0)
    second = state.snapshot(origin + T + 1110.0)  # B left 60 s ago; A took 330 s, with A's filter error
    predicted_b, _ = _transitclock(330.0, [350.0, 370.0, 360.0], error_a)
    assert _row(second, net, "R12-0-003", 2)["kalman_eta_s"] == pytest.approx(predicted_b - 60.0)
    unseen, _ = _transitclock(330.0, [350.0, 370.0, 360.0], 100.0)
    assert abs(predicted_b - unseen) > 1.0  # the carried error matters in this case


def test_kalman_uses_the_historical_mean_with_fewer_than_three_days(net: Network) -> None:
    origin = _origin(net, TODAY)
    history = _history(net, PAST[:2])
    state = LiveState(net, history, _events(net, TODAY_ROWS))
    row = _row(state.snapshot(origin + T + 660.0), net, "R12-0-002", 2)
    segment = net.visit_segment[_visit(net, "R12-0-002", 2)]
    weekday = pd.Timestamp(origin + T, unit="s", tz="UTC").tz_convert(net.tz).day_of_week < 5
    hour = int(net.visit_arr[_visit(net, "R12-0-002", 2)] // 3600) % 24 + (0 if weekday else 24)
    assert row["kalman_eta_s"] == pytest.approx(history.run_s[segment, hour] - 60.0)
    assert row["kalman_eta_s"] != pytest.approx(_transitclock(300.0, [380.0, 420.0], 100.0)[0] - 60.0)


def _stalled(net: Network) -> tuple[LiveState, float, float]:
    """Bus A (R12-0-002) leaves stop 1 and is never heard from again; (state, origin, its departure)."""
    origin = _origin(net, TODAY)
    departure = T + 600.0
    return LiveState(net, _history(net, PAST), _events(net, TODAY_ROWS[:3])), origin, origin + departure


def test_onebusaway_deviation_grows_while_the_bus_is_overdue(net: Network) -> None:
    state, origin, left = _stalled(net)
    stop1, stop2, stop5 = (_visit(net, "R12-0-002", i) for i in (1, 2, 5))
    deviation = left - (origin + net.visit_dep[stop1])
    due = origin + net.visit_arr[stop2] + deviation + 30.0  # at stop 2, with the deviation, plus the report lag
    on_time = state.snapshot(left + 30.0)
    assert left + 30.0 < due
    arrival = on_time["made_at"] + on_time["deviation_eta_s"]
    assert _row(on_time.assign(a=arrival), net, "R12-0-002", 5)["a"] == pytest.approx(
        origin + net.visit_arr[stop5] + deviation)
    later = []
    for now in (due + 300.0, due + 900.0):
        frame = state.snapshot(now)
        row = _row(frame, net, "R12-0-002", 5)
        later.append(row["made_at"] + row["deviation_eta_s"])
        # overdue: the deviation is now − the scheduled arrival at the next stop
        # (allowing the feed's report lag: the bus may have passed the stop that long ago, still unreported)
        assert row["deviation_eta_s"] == pytest.approx(net.visit_arr[stop5] - net.visit_arr[stop2]
                                                       - state.report_lag_s)
        assert state.report_lag_s == pytest.approx(25.0)  # known 30, 30 and 15 s after the departures
    assert later[1] - later[0] == pytest.approx(600.0)


def test_a_stalled_bus_keeps_predictions_that_move_later(net: Network) -> None:
    state, origin, left = _stalled(net)
    arrivals, stalled = [], []
    for minutes in (1, 10, 20, 40):
        row = _row(state.snapshot(left + minutes * 60.0), net, "R12-0-002", 5)
        arrivals.append(row["made_at"] + row["kalman_eta_s"])
        stalled.append(row["stalled_s"])
    assert stalled[0] == 0.0 and stalled[1] > 0.0
    assert np.diff(stalled[1:]) == pytest.approx([600.0, 1200.0])
    assert np.diff(arrivals[1:]) == pytest.approx([600.0, 1200.0])  # standing still: every minute a minute later
    assert (np.diff(arrivals) >= 0).all()
    end = origin + net.visit_arr[_visit(net, "R12-0-002", 13)] + (left - origin - net.visit_dep[
        _visit(net, "R12-0-002", 1)])
    gone = state.snapshot(end + state.past_end_s + 60.0)
    assert not (gone["trip"] == int(np.flatnonzero(net.trip_ids == "R12-0-002")[0])).any()


def test_the_board_row_says_how_long_a_bus_has_been_overdue(app: Flask, tmp_path: Path) -> None:
    add_worker_feed(app)
    worker = make_worker(app, tmp_path)

    def s2_rows() -> list[dict[str, Any]]:
        stored = read_board(get_redis(app), "S2")
        assert stored is not None
        return list(json.loads(stored.body)["arrivals"])

    worker.cycle(MORNING, events(event("T12-a", 10, MORNING - 60)))  # left S1 a minute ago, due at S2 at 08:05
    moving = [row for row in s2_rows() if row["realtime"]]
    assert [row["stalled_s"] for row in moving] == [0]
    assert all(row["stalled_s"] is None for row in s2_rows() if not row["realtime"])
    worker.cycle(MORNING + 840.0)  # 08:15:30, not seen at S2, which the history expects 12 min after S1
    stalled = [row for row in s2_rows() if row["realtime"]]
    assert len(stalled) == 1 and stalled[0]["trip_id"] == "T12-a" and stalled[0]["stalled_s"] > 60
