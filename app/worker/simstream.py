"""The simulated city streaming live: today's service day simulated once, then its pings (and card taps) handed
out as the wall clock passes them — the same day the simulator writes to files (``qala simulate
--pace-to-timetable``, as ``make demo`` does), at real-time pace."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from app.avl.ingest import FRAME_COLUMNS
from prediction.network import Network
from prediction.sim.params import DEMO_PARAMS
from prediction.sim.simulate import CitySimulator

__all__ = ["LiveCity"]


def _epoch(text: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(text, format="ISO8601", utc=True)
    return (stamps - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy()


class LiveCity:
    """Pings and taps of today's service day (and yesterday's, in the small hours), released by time."""

    def __init__(self, net: Network, now: float, *, seed: int = 0, ping_interval_s: float = 15.0,
                 warmup_s: float = 900.0) -> None:
        local = dt.datetime.fromtimestamp(now, net.tz)
        today = local.date()
        # yesterday's service runs past midnight: simulate it too only in the small hours
        days = [today - dt.timedelta(days=1), today] if local.hour < 4 else [today]
        sim = CitySimulator(net, seed=seed, params=DEMO_PARAMS)  # the demo's city, as its history was simulated
        ping_parts, tap_parts = [], []
        for day in days:
            result = sim.run_day(day, ping_interval_s=ping_interval_s)
            ping_parts.append(result.pings)
            taps = result.taps.copy()
            taps["t"] = _epoch(taps["tap_time"])
            tap_parts.append(taps)
        pings = pd.concat(ping_parts, ignore_index=True)
        pings["t"] = _epoch(pings.pop("timestamp"))
        self.pings = pings.sort_values("t", kind="stable").reset_index(drop=True)[list(FRAME_COLUMNS)]
        self.taps = pd.concat(tap_parts, ignore_index=True).sort_values("t", kind="stable").reset_index(drop=True)
        self._ping_t = self.pings["t"].to_numpy(float)
        self._tap_t = self.taps["t"].to_numpy(float)
        self._ping_cursor = int(np.searchsorted(self._ping_t, now - warmup_s, side="right"))
        self._tap_cursor = int(np.searchsorted(self._tap_t, now, side="right"))

    def vehicle_ids(self) -> list[str]:
        return sorted(str(v) for v in self.pings["vehicle_id"].unique())

    def pings_until(self, now: float) -> pd.DataFrame:
        """Pings not handed out yet with a time at or before ``now`` (the first call includes the warm-up)."""
        end = int(np.searchsorted(self._ping_t, now, side="right"))
        frame = self.pings.iloc[self._ping_cursor:end]
        self._ping_cursor = max(self._ping_cursor, end)
        return frame

    def taps_until(self, now: float) -> pd.DataFrame:
        end = int(np.searchsorted(self._tap_t, now, side="right"))
        frame = self.taps.iloc[self._tap_cursor:end]
        self._tap_cursor = max(self._tap_cursor, end)
        return frame
