"""Board rows' local times are rendered for whole columns at once; they must read exactly as
``datetime.isoformat`` writes them, across a clock change too."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from app.realtime.catalog import StaticCatalog
from app.realtime.compose import RowFormatter


def _formatter(zone: str) -> RowFormatter:
    catalog = StaticCatalog(feed_id=0, timezone=ZoneInfo(zone), routes={}, trips={}, stops={})
    net: Any = SimpleNamespace(trip_ids=np.zeros(0, dtype=object), stop_ids=np.zeros(0, dtype=object),
                               visit_seq=np.zeros(0, dtype=np.int64), visit_arr=np.zeros(0, dtype=np.int64),
                               visit_dep=np.zeros(0, dtype=np.int64))
    return RowFormatter(catalog, cast(Any, net))


@pytest.mark.parametrize(("zone", "start"), [
    ("Asia/Almaty", "2026-03-03T07:30:00+00:00"),
    ("Europe/Berlin", "2026-03-29T00:10:00+00:00"),  # clocks go forward at 01:00 UTC
    ("America/St_Johns", "2026-11-01T03:00:00+00:00"),  # a half-hour zone, clocks go back
    ("UTC", "2026-03-03T07:30:00+00:00"),
])
def test_times_read_as_isoformat(zone: str, start: str) -> None:
    first = dt.datetime.fromisoformat(start).timestamp()
    epochs = first + np.concatenate([np.arange(0, 7200, 61.7), [0.999, 3599.5]])
    expected = [dt.datetime.fromtimestamp(int(np.floor(t)), ZoneInfo(zone)).isoformat(timespec="seconds")
                for t in epochs.tolist()]
    assert _formatter(zone).times(epochs) == expected
    assert _formatter(zone).times(np.zeros(0)) == []
