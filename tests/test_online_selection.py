"""Online re-selection (``prediction/eta/online.py``): what the service serves per group follows the arrivals it has
seen, hour by hour, and a new city's worker stops serving a baseline that its own arrivals show to be wrong."""

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
from prediction.eta.models import CANDIDATES
from prediction.eta.online import OnlineSelection, arrival_keys, candidate_etas, groups_of
from tests.worker_feed import MORNING, add_worker_feed, event, events, make_worker

HOUR = 3600.0


def _rows(n: int, *, kalman: float, deviation: float, schedule: float) -> pd.DataFrame:
    """Snapshot-shaped rows of current trips whose baselines say the given ETAs (s)."""
    return pd.DataFrame({"kalman_eta_s": np.full(n, kalman), "deviation_eta_s": np.full(n, deviation),
                         "sched_eta_s": np.full(n, schedule), "block_ahead": np.zeros(n)})


def _hour_of_arrivals(selection: OnlineSelection, start: float, n: int, *, production: float, truth: float,
                      schedule: float) -> pd.DataFrame:
    """n arrivals predicted at ``start``: the production estimate says ``production`` s, the timetable
    ``schedule`` s, and the buses come ``truth`` s later; all are observed within the hour."""
    rows = _rows(n, kalman=production, deviation=production, schedule=schedule)
    keys = np.arange(n, dtype=np.int64) + int(start)
    etas = candidate_etas(rows, np.full(n, production))
    selection.record(start, keys, groups_of(rows), etas)
    selection.observe(keys, np.full(n, start + truth))
    return rows


def test_a_group_switches_to_what_its_arrivals_favour_at_the_next_refresh() -> None:
    selection = OnlineSelection(min_rows=100)
    selection.refresh(0.0)
    rows = _hour_of_arrivals(selection, 60.0, 400, production=100.0, truth=600.0, schedule=600.0)
    etas = candidate_etas(rows, np.full(len(rows), 100.0))
    group = groups_of(rows)
    # until the hour turns, the production estimate is served as it is
    assert np.allclose(selection.apply(group, etas), 100.0)
    assert not selection.refresh(HOUR - 1.0)
    assert selection.refresh(HOUR)
    served = selection.apply(group, etas)
    # the buses came at 600 s: the timetable now wins, inside the benchmark's window (90 s early, 270 s late)
    assert np.all((600.0 - served >= -90.0) & (600.0 - served <= 270.0))
    chosen = selection.table()[int(group[0])]
    assert chosen["uses"] != "model" and chosen["scored_rows"] > 0
    # other groups saw nothing and keep the production estimate
    assert sum(t["uses"] != "model" for t in selection.table()) == 1


def test_too_few_arrivals_or_too_small_a_gain_keep_the_production_estimate() -> None:
    few = OnlineSelection(min_rows=500)
    few.refresh(0.0)
    _hour_of_arrivals(few, 60.0, 400, production=100.0, truth=600.0, schedule=600.0)
    few.refresh(HOUR)
    assert not few.active()
    # the production estimate is already right: nothing beats it by the margin
    right = OnlineSelection(min_rows=100)
    right.refresh(0.0)
    _hour_of_arrivals(right, 60.0, 400, production=600.0, truth=600.0, schedule=900.0)
    right.refresh(HOUR)
    assert not right.active()


def test_recording_is_sampled_and_old_predictions_are_dropped() -> None:
    selection = OnlineSelection(sample_s=120.0, keep_s=2 * HOUR)
    rows = _rows(10, kalman=300.0, deviation=300.0, schedule=300.0)
    etas, group = candidate_etas(rows, np.full(10, 300.0)), groups_of(rows)
    keys = np.arange(10, dtype=np.int64)
    assert selection.record(0.0, keys, group, etas) == 10
    assert selection.record(60.0, keys, group, etas) == 0  # within the sample period
    assert selection.record(120.0, keys, group, etas) == 10
    far = _rows(3, kalman=4000.0, deviation=4000.0, schedule=4000.0)
    assert selection.record(240.0, keys[:3], groups_of(far), candidate_etas(far, np.full(3, 4000.0))) == 0
    selection.refresh(3 * HOUR)  # both kept samples are older than keep_s: never scored, forgotten
    assert selection.observe(keys, np.full(10, 3 * HOUR)) == 0


def test_evidence_fades_so_a_changed_city_is_followed() -> None:
    def served_after_a_change(decay: float) -> bool:
        selection = OnlineSelection(min_rows=100, decay=decay)
        selection.refresh(0.0)
        _hour_of_arrivals(selection, 60.0, 4000, production=100.0, truth=600.0, schedule=600.0)
        selection.refresh(HOUR)
        assert selection.active()
        # from now on the production estimate is right again, on fewer arrivals an hour than that first hour's
        for hour in range(1, 6):
            _hour_of_arrivals(selection, hour * HOUR + 60.0, 400, production=100.0, truth=100.0, schedule=600.0)
            selection.refresh((hour + 1) * HOUR)
        return selection.active()

    assert not served_after_a_change(0.5)  # the old evidence halved every hour
    assert served_after_a_change(1.0)  # kept whole, it would still outvote five hours of the new city


def test_arrival_keys_name_a_service_day_and_a_visit() -> None:
    origin = np.array([1_700_000_000.0, 1_700_000_000.0, 1_700_086_400.0])
    keys = arrival_keys(origin, np.array([5, 6, 5]), 100)
    assert len(set(keys.tolist())) == 3
    assert arrival_keys(origin[:1] + 0.4, np.array([5]), 100)[0] == keys[0]


@pytest.mark.parametrize("name", CANDIDATES)
def test_every_candidate_can_be_served(name: str) -> None:
    selection = OnlineSelection()
    rows = _rows(4, kalman=100.0, deviation=200.0, schedule=300.0)
    etas = candidate_etas(rows, np.full(4, 400.0))
    group = groups_of(rows)
    selection.choice[group] = CANDIDATES.index(name)
    selection.offset[group] = 10.0
    expected = {"model": 400.0, "kalman": 100.0, "deviation": 200.0, "schedule": 300.0, "model+kalman": 250.0,
                "model+deviation": 300.0, "model+schedule": 350.0}[name]
    assert np.allclose(selection.apply(group, etas), expected + 10.0)


# --- in the worker -------------------------------------------------------------------------------------------------

@pytest.fixture
def feed_app(app: Flask) -> Flask:
    add_worker_feed(app)
    return app


def _live_row(app: Flask, stop_id: str) -> dict[str, Any]:
    stored = read_board(get_redis(app), stop_id)
    assert stored is not None
    live = [row for row in json.loads(stored.body)["arrivals"] if row["realtime"]]
    assert len(live) == 1
    return live[0]


def test_the_worker_scores_what_it_served_against_the_arrivals_it_takes_in(feed_app: Flask, tmp_path: Path) -> None:
    worker = make_worker(feed_app, tmp_path)
    worker.online = OnlineSelection(min_rows=1.0, sample_s=0.0)
    worker.cycle(MORNING, events(event("T12-a", 10, MORNING - 60)))
    served = dt.datetime.fromisoformat(_live_row(feed_app, "S2")["predicted_time"]).timestamp()
    assert served == MORNING + 240  # 08:05:30, the deviation baseline (no model file)
    assert worker.online.rows.sum() == 0
    # T12-a reaches S2 at 08:09:30, four minutes after what was served: too late for the 6-10 min window
    worker.cycle(MORNING + 540, events(event("T12-a", 20, MORNING + 500)))
    assert worker.online.rows.sum() >= 1
    assert not worker.online.active()  # nothing changes before the hour turns
    worker.cycle(MORNING + 3600)
    later = [row for row in worker.online.table() if row["offset_s"] != 0.0]
    assert later and all(30.0 <= float(row["offset_s"]) <= 180.0 for row in later)  # each of those would have hit


def test_what_the_selection_chooses_is_what_the_board_shows(feed_app: Flask, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    worker = make_worker(feed_app, tmp_path)
    monkeypatch.setattr(worker.online, "refresh", lambda now: False)  # keep the choice set here
    worker.online.choice[:] = CANDIDATES.index("schedule")
    worker.online.offset[:] = 60.0
    worker.cycle(MORNING, events(event("T12-a", 10, MORNING - 60)))
    row = _live_row(feed_app, "S2")
    scheduled = dt.datetime.fromisoformat(row["scheduled_time"])
    assert dt.datetime.fromisoformat(row["predicted_time"]) == scheduled + dt.timedelta(seconds=60)
