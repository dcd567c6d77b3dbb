"""A small two-route GTFS feed for simulator, matching and event tests (written by the tests, no shared data).

Route 12 runs along Abay avenue and turns north up Dostyk (an L-shaped shape, both directions); route 32 shares
the Abay part. Trips have no block_id, so the simulator must infer vehicle chains.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prediction.gtfstime import format_gtfs_time
from prediction.schedule import read_schedule

__all__ = ["write_line_feed"]

_ORIGIN = (43.2380, 76.9000)
_M_LAT = 1 / 111_320.0
_M_LON = 1 / (111_320.0 * np.cos(np.radians(43.238)))


def _corner_path(n_stops: int, spacing_m: float) -> list[tuple[float, float]]:
    """Stops eastward along a street, then north after the corner."""
    points = []
    east = n_stops // 2
    for i in range(n_stops):
        x = min(i, east) * spacing_m
        y = max(0, i - east) * spacing_m
        points.append((_ORIGIN[0] + y * _M_LAT, _ORIGIN[1] + x * _M_LON))
    return points


def write_line_feed(folder: Path, *, first: str = "06:00:00", last: str = "09:00:00", headway_min: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stops12 = _corner_path(14, 420.0)
    stop_rows = [f"S{i},Stop {i},{lat:.6f},{lon:.6f}" for i, (lat, lon) in enumerate(stops12)]
    shapes = []
    for direction, path in ((0, stops12), (1, stops12[::-1])):
        for seq, (lat, lon) in enumerate(path):
            shapes.append(f"R12-{direction},{lat:.6f},{lon:.6f},{seq}")
    route32 = list(range(0, 7))
    for direction, ids in ((0, route32), (1, route32[::-1])):
        for seq, i in enumerate(ids):
            shapes.append(f"R32-{direction},{stops12[i][0]:.6f},{stops12[i][1]:.6f},{seq}")
    trips, times = [], []
    h, m, _ = (int(x) for x in first.split(":"))
    start = h * 3600 + m * 60
    h, m, _ = (int(x) for x in last.split(":"))
    end = h * 3600 + m * 60
    number = 0
    for route, ids, headway in (("R12", list(range(14)), headway_min), ("R32", route32, headway_min * 2)):
        for direction in (0, 1):
            order = ids if direction == 0 else ids[::-1]
            for departure in range(start + direction * 240, end, headway * 60):
                number += 1
                trip = f"{route}-{direction}-{number:03d}"
                trips.append(f"{route},WD,{trip},{direction},{route}-{direction}")
                for seq, stop in enumerate(order):
                    arrive = departure + seq * 75
                    leave = arrive + (0 if seq in (0, len(order) - 1) else 15)
                    times.append(f"{trip},{format_gtfs_time(arrive)},{format_gtfs_time(leave)},S{stop},{seq + 1}")
    files = {
        "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,Almaty Bus,https://example.kz,Asia/Almaty\n",
        "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\n" + "\n".join(stop_rows) + "\n",
        "routes.txt": "route_id,agency_id,route_short_name,route_type\nR12,A,12,3\nR32,A,32,3\n",
        "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
                        "WD,1,1,1,1,1,1,1,20260101,20271231\n",
        "trips.txt": "route_id,service_id,trip_id,direction_id,shape_id\n" + "\n".join(trips) + "\n",
        "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n" + "\n".join(times) + "\n",
        "shapes.txt": "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\n" + "\n".join(shapes) + "\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_line_feed_reads(tmp_path: Path) -> None:
    feed = read_schedule(write_line_feed(tmp_path / "feed"), canonical=False)
    assert set(feed.routes["route_id"]) == {"R12", "R32"}
    assert feed.trips["block_id"].isna().all() if "block_id" in feed.trips else True
