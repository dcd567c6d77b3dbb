"""``qala taps import``: the real Shenzhen sample reports boardings by hour and by route/company; the
simulator's CSV is priced by the fare engine; re-importing replaces rather than double counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskCliRunner

from app import get_db
from app.reports.queries import Filters, run_report

QALA_CSV = """tap_time,card_id,category,has_pass,vehicle_id,device_id,device_seq,route_id,trip_id,stop_id,is_transfer
2026-03-02T08:00:00+05:00,9643000000000000011,standard,False,bus-0001,val-0001-0,1,R1,T1,S1,False
2026-03-02T08:20:00+05:00,9643000000000000011,standard,False,bus-0002,val-0002-0,1,R2,T2,S2,True
2026-03-02T08:05:00+05:00,9643000000000000029,pensioner,True,bus-0001,val-0001-1,1,R1,T1,S1,False
"""


def report(app: Flask, name: str, **filters: Any) -> list[dict[str, Any]]:
    with get_db(app).session() as session:
        return run_report(session, name, Filters(**filters))[1]


def test_shenzhen_sample_imports_and_reports_boardings_by_hour(app: Flask, runner: FlaskCliRunner,
                                                               shared_data: Path) -> None:
    path = shared_data / "taps" / "shenzhen_2018_sample10k.csv"
    result = runner.invoke(args=["taps", "import", "--format", "shenzhen", str(path)])
    assert result.exit_code == 0, result.output
    assert "dataset=shenzhen boardings=9565" in result.output  # 9,360 metro entries + 205 bus rows
    by_hour = {r["hour"]: r["boardings"] for r in report(app, "boardings-by-hour", dataset="shenzhen")}
    assert sum(by_hour.values()) == 9565 and max(by_hour, key=by_hour.__getitem__) == 6
    routes = {r["route_id"]: r["boardings"] for r in report(app, "boardings-by-route", dataset="shenzhen")}
    assert routes["地铁五号线"] > 0
    bus = {k: v for k, v in routes.items() if ":" in k}  # <company>:<line>, no stop
    assert sum(bus.values()) == 205
    again = runner.invoke(args=["taps", "import", "--format", "shenzhen", str(path)])
    assert again.exit_code == 0
    assert sum(r["boardings"] for r in report(app, "boardings-by-hour", dataset="shenzhen")) == 9565
    assert report(app, "boardings-by-hour") == []  # our own dataset is untouched


def test_qala_csv_is_priced_by_the_fare_engine(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    path = tmp_path / "taps_2026-03-02.csv"
    path.write_text(QALA_CSV)
    result = runner.invoke(args=["taps", "import", "--format", "qala", str(path)])
    assert result.exit_code == 0, result.output
    assert "boardings=3" in result.output
    assert report(app, "boardings-by-route") == [
        {"route_id": "R1", "boardings": 2, "transfers": 0, "revenue": 12000},
        {"route_id": "R2", "boardings": 1, "transfers": 1, "revenue": 12000},
    ]
    assert {r["paid_by"]: r["boardings"] for r in report(app, "pass-use")} == {"pass": 1, "stored_value": 2}
    od = {(r["origin"], r["destination"]): r["trips"] for r in report(app, "od-matrix")}
    assert od == {("S1", "S2"): 1, ("S1", None): 1, ("S2", None): 1}
    assert "9643000000000000011" not in str(report(app, "od-matrix"))


def test_import_refuses_a_file_of_the_wrong_shape(runner: FlaskCliRunner, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    result = runner.invoke(args=["taps", "import", "--format", "shenzhen", str(path)])
    assert result.exit_code != 0 and "not a Shenzhen Tong export" in result.output
