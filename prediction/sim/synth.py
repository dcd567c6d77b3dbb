"""Write a synthetic GTFS feed of any size, shaped like the Almaty demo feed, for benchmarks."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TextIO

import numpy as np

from prediction.sim.synth_city import (
    DWELL_S,
    FloatArray,
    IntArray,
    SynthCity,
    SynthRoute,
    assign_blocks,
    build_city,
    path_km,
    timetable,
)

__all__ = ["write_synthetic_feed"]

AGENCY_ID = "synth_bus"
NETWORK_ID = "synth_bus"
LANGUAGES = ("ru", "kk", "en")
AGENCY_NAMES = ("Автобусы Синтград", "Синтград автобустары", "Synthgrad Buses")
ROUTE_COLORS = ("D32F2F", "1976D2", "2E7D32", "7B1FA2", "00796B", "C2185B", "5D4037", "0277BD", "455A64",
                "E64A19", "303F9F", "6A1B9A")  # dark enough for white text
SERVICES = (("weekday", "wd"), ("weekend", "we"))
# Kazakhstan's public holidays (month, day): on weekdays the weekday service gives way to the weekend one.
HOLIDAYS = ((1, 1), (1, 2), (1, 7), (3, 8), (3, 21), (3, 22), (3, 23), (5, 1), (5, 7), (5, 9), (7, 6),
            (8, 30), (10, 25), (12, 16))

# Fares v2 as in the Almaty demo feed (Onay 2024): every boarding is paid, concessions, monthly passes.
# The transfer rule (type 1, "A + AB + B", no transfer product) says a change of bus costs both legs.
RIDER_CATEGORIES = (("standard", "Полный тариф", "1"), ("student", "Студент", "0"),
                    ("school", "Школьник", "0"), ("pensioner", "Пенсионер", "0"),
                    ("pensioner_75", "Пенсионер старше 75 лет", "0"),
                    ("large_family", "Многодетная мать", "0"), ("veteran", "Ветеран", "0"),
                    ("disability", "Лица с инвалидностью", "0"))
FARE_PRODUCTS = (
    ("ride", "Разовая поездка", "standard", "onay_card", "120.00"),
    ("ride", "Разовая поездка", "standard", "onay_qr", "120.00"),
    *(("ride_concession", "Разовая поездка (льготная)", cat, "onay_card", "60.00")
      for cat in ("student", "school", "pensioner", "large_family")),
    *(("ride_free", "Бесплатный проезд", cat, "onay_card", "0.00")
      for cat in ("veteran", "pensioner_75", "disability")),
    *(("pass_month", "Проездной на месяц", cat, "onay_card", amount)
      for cat, amount in (("standard", "9900.00"), ("student", "4200.00"), ("school", "2000.00"),
                          ("pensioner", "3000.00"))),
)


class _FeedSink:
    """Writes the feed's tables into a folder, or into a zip when the target ends in ``.zip``."""

    def __init__(self, out: Path) -> None:
        self._zip: zipfile.ZipFile | None = None
        self._folder = out
        if out.suffix.lower() == ".zip":
            out.parent.mkdir(parents=True, exist_ok=True)
            self._zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        else:
            out.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def open(self, table: str) -> Iterator[TextIO]:
        if self._zip is None:
            with (self._folder / f"{table}.txt").open("w", encoding="utf-8", newline="") as handle:
                yield handle
            return
        info = zipfile.ZipInfo(f"{table}.txt", date_time=(2026, 1, 1, 0, 0, 0))  # fixed: byte-identical zips
        info.compress_type = zipfile.ZIP_DEFLATED
        with self._zip.open(info, "w") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
            yield text

    def table(self, table: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
        count = 0
        with self.open(table) as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            for row in rows:
                writer.writerow(row)
                count += 1
        return count

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _stop_names(city: SynthCity, node: int) -> tuple[str, str, str]:
    avenue, street = divmod(node, city.size)
    return (f"Проспект {avenue + 1} – Улица {street + 1}", f"{avenue + 1}-даңғыл – {street + 1}-көше",
            f"Avenue {avenue + 1} – Street {street + 1}")


def _time_strings(limit_s: int) -> list[str]:
    """HH:MM:SS for every second up to ``limit_s``: a lookup is much faster than formatting 2M times."""
    return [f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}" for t in range(limit_s + 1)]


def _shape_rows(city: SynthCity, route: SynthRoute) -> list[tuple[str, str, str, int, str]]:
    """Both directions' shapes: the stops plus a mid-block point between each pair (denser than stops)."""
    rows: list[tuple[str, str, str, int, str]] = []
    for direction in (0, 1):
        nodes = route.nodes if direction == 0 else route.nodes[::-1]
        lat = np.empty(2 * len(nodes) - 1)
        lon = np.empty_like(lat)
        lat[0::2], lon[0::2] = city.lat[nodes], city.lon[nodes]
        lat[1::2] = (lat[0:-1:2] + lat[2::2]) / 2
        lon[1::2] = (lon[0:-1:2] + lon[2::2]) / 2
        km = path_km(lat, lon)
        shape_id = f"{route.route_id}-{direction}"
        rows += [(shape_id, f"{a:.6f}", f"{b:.6f}", seq, f"{d:.3f}")
                 for seq, (a, b, d) in enumerate(zip(lat, lon, km, strict=True), start=1)]
    return rows


@dataclass(frozen=True)
class _Pattern:
    """One direction of a route: per-stop dwell, the stop_times row tails (",stop,seq,km") and headsign."""

    km: FloatArray
    dwell: IntArray
    tails: list[str]
    headsign: str


def _patterns(city: SynthCity, route: SynthRoute, busy: set[int]) -> list[_Pattern]:
    patterns = []
    for direction in (0, 1):
        nodes = route.nodes if direction == 0 else route.nodes[::-1]
        km = path_km(city.lat[nodes], city.lon[nodes])
        dwell = np.array([DWELL_S if int(n) in busy else 0 for n in nodes], dtype=np.int64)
        dwell[0] = dwell[-1] = 0
        tails = [f",S{int(n)},{seq},{d:.3f}\n"
                 for seq, (n, d) in enumerate(zip(nodes, km, strict=True), start=1)]
        patterns.append(_Pattern(km, dwell, tails, _stop_names(city, int(nodes[-1]))[0]))
    return patterns


Run = tuple[int, int, list[int], list[int]]  # start, direction, arrivals, departures


def _runs(route: SynthRoute, service_id: str, patterns: list[_Pattern]) -> list[Run]:
    """(start, direction, arrivals, departures) of every trip of a route and service, in start order."""
    runs: list[Run] = []
    for direction, pattern in enumerate(patterns):
        offset = (route.index * 3 + direction * 4) % 9
        table = timetable(route, service_id, pattern.km, pattern.dwell, offset)
        runs += [(int(start), direction, arrival, departure) for start, arrival, departure
                 in zip(table.start.tolist(), table.arrival.tolist(), table.departure.tolist(), strict=True)]
    runs.sort(key=lambda run: (run[0], run[1]))
    return runs


def _write_stop_times(sink: _FeedSink, city: SynthCity, busy: set[int]) -> tuple[int, list[list[str]]]:
    """Stream stop_times route by route (strings built from lookup tables); returns row count and trips."""
    times = _time_strings(30 * 3600)
    trips: list[list[str]] = []
    count = 0
    with sink.open("stop_times") as handle:
        handle.write("trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled\n")
        for route in city.routes:
            patterns = _patterns(city, route, busy)
            for service_id, tag in SERVICES:
                runs = _runs(route, service_id, patterns)
                buses = assign_blocks([r[0] for r in runs], [r[3][-1] for r in runs], [r[1] for r in runs])
                numbers = [0, 0]
                for (_, direction, arrival, departure), bus in zip(runs, buses, strict=True):
                    numbers[direction] += 1
                    trip_id = f"{route.route_id}-{tag}-{direction}-{numbers[direction]:03d}"
                    head = trip_id + ","
                    tails = patterns[direction].tails
                    handle.write("".join([head + times[a] + "," + times[d] + tail
                                          for a, d, tail in zip(arrival, departure, tails, strict=True)]))
                    count += len(tails)
                    block_id = f"{route.route_id}-{tag}-{bus:02d}"
                    trips.append([route.route_id, service_id, trip_id, patterns[direction].headsign,
                                  str(direction), block_id, f"{route.route_id}-{direction}"])
    return count, trips


def _calendar_dates(start: date, end: date) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for year in range(start.year, end.year + 1):
        for month, day in HOLIDAYS:
            holiday = date(year, month, day)
            if start <= holiday <= end and holiday.weekday() < 5:
                stamp = holiday.strftime("%Y%m%d")
                rows += [("weekday", stamp, "2"), ("weekend", stamp, "1")]
    return rows


def _write_fares(sink: _FeedSink, city: SynthCity) -> dict[str, int]:
    return {
        "fare_media": sink.table("fare_media", ["fare_media_id", "fare_media_name", "fare_media_type"],
                                 [("onay_card", "Карта Onay", "2"), ("onay_qr", "QR-билет Onay", "4")]),
        "rider_categories": sink.table(
            "rider_categories", ["rider_category_id", "rider_category_name", "is_default_fare_category"],
            RIDER_CATEGORIES),
        "fare_products": sink.table(
            "fare_products",
            ["fare_product_id", "fare_product_name", "rider_category_id", "fare_media_id", "amount",
             "currency"],
            [(*row, "KZT") for row in FARE_PRODUCTS]),
        "networks": sink.table("networks", ["network_id", "network_name"],
                               [(NETWORK_ID, "Автобусы Синтград")]),
        "route_networks": sink.table("route_networks", ["network_id", "route_id"],
                                     [(NETWORK_ID, route.route_id) for route in city.routes]),
        "fare_leg_rules": sink.table("fare_leg_rules", ["leg_group_id", "network_id", "fare_product_id"],
                                     [("bus_ride", NETWORK_ID, product) for product in
                                      ("ride", "ride_concession", "ride_free", "pass_month")]),
        "fare_transfer_rules": sink.table(
            "fare_transfer_rules",
            ["from_leg_group_id", "to_leg_group_id", "transfer_count", "fare_transfer_type"],
            [("bus_ride", "bus_ride", "-1", "1")]),
    }


def _write_network(sink: _FeedSink, city: SynthCity, stops: list[int], version: str, start: date,
                   end: date) -> dict[str, int]:
    """agency, feed_info, stops, routes, shapes, calendars and kk/ru/en translations."""
    first, last = start.strftime("%Y%m%d"), end.strftime("%Y%m%d")
    names = {node: _stop_names(city, node) for node in stops}
    return {
        "agency": sink.table(
            "agency", ["agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang"],
            [(AGENCY_ID, AGENCY_NAMES[0], "https://example.com/qala/synth", "Asia/Almaty", "ru")]),
        "feed_info": sink.table(
            "feed_info", ["feed_publisher_name", "feed_publisher_url", "feed_lang", "feed_start_date",
                          "feed_end_date", "feed_version", "feed_contact_email"],
            [("Qala synthetic city", "https://example.com/qala", "ru", first, last, version,
              "demo-feed@example.com")]),
        "stops": sink.table(
            "stops", ["stop_id", "stop_code", "stop_name", "stop_lat", "stop_lon", "location_type"],
            [(f"S{node}", str(10000 + node), names[node][0], f"{city.lat[node]:.5f}",
              f"{city.lon[node]:.5f}", "0") for node in stops]),
        "routes": sink.table(
            "routes", ["route_id", "agency_id", "route_short_name", "route_long_name", "route_type",
                       "route_color", "route_text_color"],
            [(r.route_id, AGENCY_ID, str(r.index + 1),
              f"{names[int(r.nodes[0])][0]} — {names[int(r.nodes[-1])][0]}", "3",
              ROUTE_COLORS[r.index % len(ROUTE_COLORS)], "FFFFFF") for r in city.routes]),
        "shapes": sink.table(
            "shapes",
            ["shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence", "shape_dist_traveled"],
            (row for route in city.routes for row in _shape_rows(city, route))),
        "calendar": sink.table(
            "calendar", ["service_id", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                         "sunday", "start_date", "end_date"],
            [("weekday", 1, 1, 1, 1, 1, 0, 0, first, last), ("weekend", 0, 0, 0, 0, 0, 1, 1, first, last)]),
        "calendar_dates": sink.table("calendar_dates", ["service_id", "date", "exception_type"],
                                     _calendar_dates(start, end)),
        "translations": sink.table(
            "translations", ["table_name", "field_name", "language", "translation", "record_id"],
            [*(("agency", "agency_name", lang, name, AGENCY_ID)
               for lang, name in zip(LANGUAGES, AGENCY_NAMES, strict=True)),
             *(("stops", "stop_name", lang, name, f"S{node}") for node in stops
               for lang, name in zip(LANGUAGES, names[node], strict=True))]),
    }


def write_synthetic_feed(out: Path, *, routes: int, seed: int = 0, start_date: date = date(2026, 1, 1),
                         days: int = 365) -> dict[str, int]:
    """Write a synthetic grid city's GTFS feed into folder ``out`` (or a zip if it ends in ``.zip``).

    Deterministic for a seed. Returns the number of data rows written per table (``{"stop_times": n, ...}``).
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    city = build_city(routes, seed)
    served_by: dict[int, int] = {}
    for route in city.routes:
        for node in route.nodes.tolist():
            served_by[node] = served_by.get(node, 0) + 1
    busy = {node for node, n in served_by.items() if n >= 3}
    sink = _FeedSink(Path(out))
    try:
        counts = _write_network(sink, city, sorted(served_by), f"synth-r{routes}-s{seed}", start_date,
                                start_date + timedelta(days=days - 1))
        counts["stop_times"], trips = _write_stop_times(sink, city, busy)
        counts["trips"] = sink.table(
            "trips",
            ["route_id", "service_id", "trip_id", "trip_headsign", "direction_id", "block_id", "shape_id"],
            trips)
        counts.update(_write_fares(sink, city))
    finally:
        sink.close()
    return counts
