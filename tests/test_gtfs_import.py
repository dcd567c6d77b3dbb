"""GTFS import: normalisation, atomic activation, and bad feeds that leave the previous version serving."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from app import get_db
from app.models import FareProduct, FeedVersion, Shape, Stop, StopTime, Translation, Trip
from app.schedule.importer import activate_feed_version, import_feed, load_schedule, prune_feed_versions
from prediction.gtfs.feedcheck import FeedInvalid
from prediction.gtfs.schedule import read_schedule
from tests.feeds import TINY_FEED, write_feed


def _active(app: Flask) -> FeedVersion | None:
    with get_db(app).session() as session:
        return session.scalars(select(FeedVersion).where(FeedVersion.is_active.is_(True))).one_or_none()


def _count(app: Flask, model: type, version_id: int) -> int:
    with get_db(app).session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(
            model.feed_version_id == version_id)) or 0)  # type: ignore[attr-defined]


def test_tiny_feed_loads_with_times_past_midnight_interpolation_and_fares(app: Flask, tmp_path: Path) -> None:
    report = import_feed(get_db(app), write_feed(tmp_path / "feed"), canonical=False)
    assert report.counts["stop_times"] == 6
    with get_db(app).session() as session:
        rows = session.execute(
            select(StopTime.trip_id, StopTime.stop_sequence, StopTime.arrival_s, StopTime.departure_s,
                   StopTime.timepoint).order_by(StopTime.trip_id, StopTime.stop_sequence)).all()
        products = session.execute(select(FareProduct.rider_category_id, FareProduct.amount_minor)
                                   .order_by(FareProduct.amount_minor)).all()
        search = session.scalar(select(Stop.search_text).where(Stop.stop_id == "A"))
        trip = session.get(Trip, (report.feed_version_id, "T2"))
        translations = session.scalar(select(func.count()).select_from(Translation))
    # T1's middle stop had no time: interpolated between 08:00:00 and 08:10:00 by stop order
    assert rows[1] == ("T1", 2, 8 * 3600 + 300, 8 * 3600 + 300, 0)
    assert rows[2][2:4] == (8 * 3600 + 600, 8 * 3600 + 630)
    # 24:15:00 stays on the service day it belongs to
    assert rows[5][2] == 24 * 3600 + 15 * 60
    assert trip is not None and (trip.start_s, trip.end_s) == (23 * 3600 + 50 * 60, 24 * 3600 + 15 * 60)
    assert products == [("student", 6000), ("standard", 12000)]
    assert search is not None and "абай — достық" in search and "abay — dostyk" in search
    assert translations == 2


def test_new_import_switches_the_active_version(app: Flask, tmp_path: Path) -> None:
    first = import_feed(get_db(app), write_feed(tmp_path / "one"), canonical=False)
    extra_stop = TINY_FEED["stops.txt"] + "D,104,Новая,43.2410,76.9200\n"
    second = import_feed(get_db(app), write_feed(tmp_path / "two", {"stops.txt": extra_stop}), canonical=False)
    active = _active(app)
    assert active is not None and active.id == second.feed_version_id != first.feed_version_id
    assert _count(app, Stop, first.feed_version_id) == 3
    assert _count(app, Stop, second.feed_version_id) == 4
    activate_feed_version(get_db(app), first.feed_version_id)
    active = _active(app)
    assert active is not None and active.id == first.feed_version_id
    with pytest.raises(LookupError):
        activate_feed_version(get_db(app), 987654)


def test_prune_keeps_the_newest_versions_and_the_active_one(app: Flask, tmp_path: Path) -> None:
    ids = [import_feed(get_db(app), write_feed(tmp_path / f"f{i}"), canonical=False).feed_version_id
           for i in range(4)]
    activate_feed_version(get_db(app), ids[0])
    deleted = prune_feed_versions(get_db(app), keep=2)
    assert deleted == [ids[1]]
    assert _count(app, StopTime, ids[1]) == 0  # cascaded
    assert _count(app, StopTime, ids[0]) == 6


BAD_FEEDS: dict[str, tuple[dict[str, str | None], str, int | None, str | None]] = {
    "missing required file": ({"stops.txt": None}, "stops.txt", None, None),
    "bad time": ({"stop_times.txt": TINY_FEED["stop_times.txt"].replace("08:10:00,08:10:30", "08:1O:00,08:10:30")},
                 "stop_times.txt", 4, "arrival_time"),
    "unknown stop in stop_times": ({"stop_times.txt": TINY_FEED["stop_times.txt"].replace("T2,24:02:00,24:02:00,B",
                                                                                          "T2,24:02:00,24:02:00,Z")},
                                   "stop_times.txt", 6, "stop_id"),
    "bad coordinates": ({"stops.txt": TINY_FEED["stops.txt"].replace("43.2398", "143.2398")},
                        "stops.txt", 3, "stop_lat"),
    "non-integer stop_sequence": ({"stop_times.txt": TINY_FEED["stop_times.txt"].replace("C,3", "C,third")},
                                  "stop_times.txt", 4, "stop_sequence"),
    "unknown route in trips": ({"trips.txt": TINY_FEED["trips.txt"].replace("R1,WD,T2", "R9,WD,T2")},
                               "trips.txt", 3, "route_id"),
    "invalid timezone": ({"agency.txt": TINY_FEED["agency.txt"].replace("Asia/Almaty", "Asia/Alma-Ata-X")},
                         "agency.txt", 2, "agency_timezone"),
    "bad calendar date": ({"calendar.txt": TINY_FEED["calendar.txt"].replace("20271231", "2027-12-31")},
                          "calendar.txt", 2, "end_date"),
    "time travels backwards": ({"stop_times.txt": TINY_FEED["stop_times.txt"].replace("T1,08:10:00,08:10:30",
                                                                                     "T1,07:10:00,07:10:30")},
                               "stop_times.txt", 4, "arrival_time"),
    "duplicate trip": ({"trips.txt": TINY_FEED["trips.txt"] + "R1,WD,T1,Сейфуллин,0,B1\n"}, "trips.txt", 4,
                       "trip_id"),
    "bad fare amount": ({"fare_products.txt": TINY_FEED["fare_products.txt"].replace("60,KZT", "60.005,KZT")},
                        "fare_products.txt", 3, "amount"),
}


@pytest.mark.parametrize("case", sorted(BAD_FEEDS))
def test_bad_feed_names_file_row_field_and_keeps_previous_version(app: Flask, tmp_path: Path, case: str) -> None:
    good = import_feed(get_db(app), write_feed(tmp_path / "good"), canonical=False)
    changes, file, row, field = BAD_FEEDS[case]
    with pytest.raises(FeedInvalid) as caught:
        import_feed(get_db(app), write_feed(tmp_path / "bad", changes), canonical=False)
    errors = [i for i in caught.value.issues if i.severity == "error"]
    assert any(e.file == file and e.row == row and e.field == field for e in errors), errors
    active = _active(app)
    assert active is not None and active.id == good.feed_version_id
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(FeedVersion)) == 1


def test_database_failure_mid_load_rolls_everything_back(app: Flask, tmp_path: Path) -> None:
    good = import_feed(get_db(app), write_feed(tmp_path / "good"), canonical=False)
    schedule = read_schedule(write_feed(tmp_path / "next"), canonical=False)
    # stop_times load after stops, routes and trips: a duplicate key there fails the transaction late
    schedule.stop_times = schedule.stop_times.iloc[[0, 0, 1]]
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        load_schedule(get_db(app), schedule, label="broken")
    active = _active(app)
    assert active is not None and active.id == good.feed_version_id
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(FeedVersion)) == 1
        assert session.scalar(select(func.count()).select_from(Stop)) == 3


SHARED_FEEDS = [
    "gtfs/cairns_2014.zip",
    "gtfs/chisinau_bus_2021.zip",
    "gtfs/hart_tampa_2016.zip",
    "gtfs/austin_capmetro_2016.zip",
    "gtfs/google_sample_feed.zip",
    "gtfs/sao_paulo_frequencies.zip",
    "gtfs-rt/usf_bullrunner_2017/bullrunner-gtfs.zip",
    "gtfs-rt/wmata_tripupdates_2024/wmata_gtfs_cut.zip",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", SHARED_FEEDS)
def test_every_shared_feed_imports(app: Flask, shared_data: Path, name: str) -> None:
    report = import_feed(get_db(app), shared_data / name, canonical=False)
    version = report.feed_version_id
    assert _count(app, StopTime, version) == report.counts["stop_times"] > 0
    assert _count(app, Trip, version) == report.counts["trips"] > 0
    # every trip has a shape (straight-line ones for shape-less feeds)
    with get_db(app).session() as session:
        missing = session.scalar(select(func.count()).select_from(Trip).where(
            Trip.feed_version_id == version, Trip.shape_id.is_(None)))
        generated = session.scalar(select(func.count()).select_from(Shape).where(
            Shape.feed_version_id == version, Shape.generated.is_(True)))
    assert missing == 0
    if name in ("gtfs/chisinau_bus_2021.zip", "gtfs/austin_capmetro_2016.zip"):
        assert generated and generated > 0
    active = _active(app)
    assert active is not None and active.id == version


def test_shared_quirks_stop_sequence_zero_and_frequencies(app: Flask, shared_data: Path) -> None:
    chisinau = read_schedule(shared_data / "gtfs/chisinau_bus_2021.zip", canonical=False)
    assert chisinau.stop_times["stop_sequence"].min() == 0
    sample = read_schedule(shared_data / "gtfs/google_sample_feed.zip", canonical=False)
    expanded = sample.trips[sample.trips["frequency_template_id"].notna()]
    # STBA runs every 30 min from 06:00 until (not including) 22:00 in the sample feed: 32 trips
    assert (expanded["frequency_template_id"] == "STBA").sum() == 32
    assert "STBA" not in set(sample.trips["trip_id"])
    first = sample.stop_times[sample.stop_times["trip_id"] == "STBA@06:00:00"]
    assert first["departure_s"].iloc[0] == 6 * 3600


def test_text_with_commas_quotes_and_empty_cells_round_trips(app: Flask, tmp_path: Path) -> None:
    stops = ("stop_id,stop_code,stop_name,stop_desc,stop_lat,stop_lon\n"
             'A,101,"Абай, ""Достык"" угол",,43.2389,76.9570\n'
             "B,,Абай — Фурманов,   ,43.2398,76.9455\n"
             "C,103,Абай — Сейфуллин,Line\\\\slash,43.2405,76.9330\n")
    report = import_feed(get_db(app), write_feed(tmp_path / "f", {"stops.txt": stops}), canonical=False)
    with get_db(app).session() as session:
        rows = session.execute(select(Stop.stop_id, Stop.stop_code, Stop.stop_name, Stop.stop_desc)
                               .where(Stop.feed_version_id == report.feed_version_id).order_by(Stop.stop_id)).all()
    assert rows == [("A", "101", 'Абай, "Достык" угол', None), ("B", None, "Абай — Фурманов", None),
                    ("C", "103", "Абай — Сейфуллин", "Line\\\\slash")]


def test_canonical_errors_are_warnings_unless_strict(app: Flask, shared_data: Path) -> None:
    sample = shared_data / "gtfs/google_sample_feed.zip"  # 13 rows of stop_times.txt are short
    with pytest.raises(FeedInvalid) as caught:
        import_feed(get_db(app), sample, strict=True)
    assert any(i.code == "canonical:invalid_row_length" and i.file == "stop_times.txt" and i.severity == "error"
               for i in caught.value.issues)
    assert _active(app) is None
    report = import_feed(get_db(app), sample)
    assert report.warning_summary()["canonical:invalid_row_length"] == 13
    active = _active(app)
    assert active is not None and active.warnings[0]["summary"]["canonical:invalid_row_length"] == 13


def test_zip_holding_one_folder_imports(app: Flask, tmp_path: Path) -> None:
    import shutil

    write_feed(tmp_path / "wrap" / "almaty-gtfs")
    archive = shutil.make_archive(str(tmp_path / "nested"), "zip", tmp_path / "wrap")
    report = import_feed(get_db(app), archive, canonical=False)
    assert report.counts["stop_times"] == 6 and report.counts["translations"] == 2
