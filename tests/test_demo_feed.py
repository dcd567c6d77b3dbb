"""The authored Almaty demo feed: coverage, names, shapes, calendars, headways, fares, validity, rebuild."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import gtfs_guru
import gtfs_kit as gk
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
FEED = ROOT / "gtfs_data" / "almaty"
BUILDER = ROOT / "gtfs_data" / "build_almaty.py"


def read(table: str) -> pd.DataFrame:
    return pd.read_csv(FEED / f"{table}.txt", dtype=str, keep_default_na=False)


def seconds(hhmmss: pd.Series) -> pd.Series:
    parts = hhmmss.str.split(":", expand=True).astype(int)
    return parts[0] * 3600 + parts[1] * 60 + parts[2]


@pytest.fixture(scope="module")
def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_almaty", BUILDER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def test_routes_run_both_ways() -> None:
    routes, trips = read("routes"), read("trips")
    assert len(routes) >= 12
    assert set(routes["route_type"]) == {"3"}
    assert routes["route_color"].str.fullmatch(r"[0-9A-F]{6}").all()
    directions = trips.groupby("route_id")["direction_id"].agg(set)
    assert set(directions.index) == set(routes["route_id"])
    assert all(d == {"0", "1"} for d in directions)


def test_stops_are_in_almaty_with_codes() -> None:
    stops = read("stops")
    assert stops["stop_id"].is_unique and len(stops) >= 200
    assert stops["stop_code"].is_unique and (stops["stop_code"] != "").all()
    lat, lon = stops["stop_lat"].astype(float), stops["stop_lon"].astype(float)
    assert lat.between(43.19, 43.36).all() and lon.between(76.80, 77.00).all()


def test_every_stop_is_translated_to_kazakh_russian_english() -> None:
    stops, translations = read("stops"), read("translations")
    names = translations.query("table_name == 'stops' and field_name == 'stop_name'")
    for language in ("kk", "ru", "en"):
        assert set(names.loc[names["language"] == language, "record_id"]) == set(stops["stop_id"]), language
    ru = names[names["language"] == "ru"].set_index("record_id")["translation"]
    assert (ru[stops["stop_id"]].to_numpy() == stops["stop_name"].to_numpy()).all()
    kk = set(names.loc[names["language"] == "kk", "translation"])
    assert {"Абай – Байтұрсынұлы", "Төле би – Желтоқсан"} <= kk  # real Kazakh spelling of the streets
    routes = translations[translations["table_name"] == "routes"]
    assert set(routes["language"]) == {"kk", "ru", "en"}


def test_stop_distances_sit_on_their_shapes() -> None:
    trips, stops, shapes = read("trips"), read("stops"), read("shapes")
    stop_times = read("stop_times")
    assert (trips["shape_id"] != "").all() and set(trips["shape_id"]) <= set(shapes["shape_id"])
    one_trip = trips.drop_duplicates("shape_id")
    times = stop_times[stop_times["trip_id"].isin(one_trip["trip_id"])].merge(one_trip, on="trip_id")
    times = times.merge(stops, on="stop_id")
    points = shapes.rename(columns={"shape_dist_traveled": "dist"})
    joined = times.merge(points, left_on=["shape_id", "shape_dist_traveled"], right_on=["shape_id", "dist"])
    assert len(joined) == len(times)  # every stop's distance is a vertex of the shape...
    assert (joined["stop_lat"] == joined["shape_pt_lat"]).all()  # ...at the stop's own position
    assert (joined["stop_lon"] == joined["shape_pt_lon"]).all()
    per_shape = shapes.groupby("shape_id").size()
    per_trip = times.groupby("shape_id").size()
    assert (per_shape >= per_trip).all() and (per_shape > per_trip).any()  # shapes bend between stops


def test_weekday_and_weekend_calendars_with_holidays() -> None:
    calendar = read("calendar").set_index("service_id")
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    assert calendar.loc["weekday", days].tolist() == ["1"] * 5 + ["0"] * 2
    assert calendar.loc["weekend", days].tolist() == ["0"] * 5 + ["1"] * 2
    assert set(calendar["start_date"]) == {"20260101"} and set(calendar["end_date"]) == {"20271231"}
    exceptions = read("calendar_dates")
    independence = exceptions[exceptions["date"] == "20261216"].set_index("service_id")["exception_type"]
    assert independence.to_dict() == {"weekday": "2", "weekend": "1"}


def test_peak_headway_of_a_main_route_is_six_to_ten_minutes() -> None:
    trips, stop_times = read("trips"), read("stop_times")
    outbound = trips.query("route_id == 'R2' and service_id == 'weekday' and direction_id == '0'")
    first = stop_times[stop_times["trip_id"].isin(outbound["trip_id"]) & (stop_times["stop_sequence"] == "1")]
    starts = seconds(first["departure_time"]).sort_values()
    peak = starts[(starts >= 7 * 3600) & (starts < 10 * 3600)]
    gaps = peak.diff().dropna() / 60
    assert len(peak) >= 15 and gaps.between(6, 10).all()
    midday = starts[(starts >= 11 * 3600) & (starts < 16 * 3600)].diff().dropna() / 60
    assert midday.between(12, 15).all()


def test_service_day_spans_past_midnight_and_blocks_chain() -> None:
    trips, stop_times = read("trips"), read("stop_times")
    stop_times["t"] = seconds(stop_times["departure_time"])
    spans = stop_times.groupby("trip_id").agg(first=("t", "min"), last=("t", "max"))
    assert spans["first"].min() <= 6 * 3600 and spans["last"].max() > 24 * 3600
    ends = stop_times.sort_values(["trip_id", "t"]).groupby("trip_id")["stop_id"].agg(["first", "last"])
    blocks = trips.join(spans, on="trip_id").join(ends.add_prefix("stop_"), on="trip_id")
    for _, block in blocks.sort_values("first").groupby("block_id"):
        assert (block["first"].iloc[1:].to_numpy() >= block["last"].iloc[:-1].to_numpy()).all()
        assert (block["stop_first"].iloc[1:].to_numpy() == block["stop_last"].iloc[:-1].to_numpy()).all()


def test_fares_v2_carry_almaty_2024_prices() -> None:
    categories = read("rider_categories").set_index("rider_category_id")
    assert categories.loc[categories["is_default_fare_category"] == "1"].index.tolist() == ["standard"]
    products = read("fare_products")
    assert set(products["currency"]) == {"KZT"}
    price = {(row.fare_product_id, row.rider_category_id, row.fare_media_id): row.amount
             for row in products.itertuples()}
    assert price[("ride", "standard", "onay_card")] == "120.00"
    for category in ("student", "school", "pensioner", "large_family"):
        assert price[("ride_concession", category, "onay_card")] == "60.00"
    for category in ("veteran", "pensioner_75", "disability"):
        assert price[("ride_free", category, "onay_card")] == "0.00"
    passes = {cat: amount for (product, cat, _), amount in price.items() if product == "pass_month"}
    assert passes == {"standard": "9900.00", "student": "4200.00", "school": "2000.00",
                      "pensioner": "3000.00"}
    media = read("fare_media").set_index("fare_media_id")["fare_media_type"]
    assert media["onay_card"] == "2"
    legs = read("fare_leg_rules")
    assert set(legs["fare_product_id"]) == set(products["fare_product_id"])
    assert set(read("route_networks")["route_id"]) == set(read("routes")["route_id"])
    transfer = read("fare_transfer_rules")
    assert transfer["fare_transfer_type"].tolist() == ["1"]  # A + AB + B: every boarding is paid


def test_canonical_validator_finds_no_errors() -> None:
    result = gtfs_guru.validate(str(FEED))
    assert result.error_count == 0, [(n.code, n.file, n.row, n.message) for n in result.errors()][:10]


def test_gtfs_kit_reads_it_and_computes_trip_stats() -> None:
    feed = gk.read_feed(FEED, dist_units="km")
    stats = gk.compute_trip_stats(feed)
    assert len(stats) == len(read("trips"))
    speed = stats["distance"] / stats["duration"]  # km per hour
    assert speed.between(13, 24).all()


def test_builder_regenerates_identical_files(builder: ModuleType, tmp_path: Path) -> None:
    counts = builder.build_feed(tmp_path)
    committed = sorted(p.name for p in FEED.glob("*.txt"))
    assert sorted(p.name for p in tmp_path.glob("*.txt")) == committed
    for name in committed:
        assert (tmp_path / name).read_bytes() == (FEED / name).read_bytes(), name
    assert counts["stop_times"] == len(read("stop_times"))
