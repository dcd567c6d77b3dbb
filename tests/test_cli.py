"""The qala CLI: thin commands over the import service, clear messages and exit codes."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from app import get_db
from app.models import FeedVersion
from tests.feeds import TINY_FEED, write_feed


def test_import_prints_counts_and_versions_lists_it(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = runner.invoke(args=["gtfs", "import", str(write_feed(tmp_path / "f")), "--no-canonical",
                                 "--label", "tiny"])
    assert result.exit_code == 0, result.output
    assert "is active: 1 routes, 3 stops, 2 trips, 6 stop_times" in result.output
    listing = runner.invoke(args=["gtfs", "versions"])
    assert "tiny" in listing.output and listing.output.lstrip().startswith("*")
    again = runner.invoke(args=["gtfs", "import", str(tmp_path / "f"), "--no-canonical", "--if-changed"])
    assert again.exit_code == 0 and "nothing to do" in again.output
    assert len(runner.invoke(args=["gtfs", "versions"]).output.strip().splitlines()) == 1


def test_failed_import_names_file_row_field_and_exits_nonzero(app: Flask, runner: FlaskCliRunner,
                                                              tmp_path: Path) -> None:
    broken = TINY_FEED["stop_times.txt"].replace("T2,24:02:00,24:02:00,B", "T2,24:02:00,24:02:00,NOPE")
    result = runner.invoke(args=["gtfs", "import", str(write_feed(tmp_path / "bad", {"stop_times.txt": broken})),
                                 "--no-canonical"])
    assert result.exit_code == 1
    assert "stop_times.txt:6 [stop_id]" in result.output
    assert "'NOPE' does not exist in stops.txt" in result.output
    assert "nothing was changed" in result.output
    with get_db(app).session() as session:
        assert session.scalars(select(FeedVersion)).all() == []


def test_validate_reports_canonical_warnings_without_importing(app: Flask, runner: FlaskCliRunner,
                                                               tmp_path: Path) -> None:
    result = runner.invoke(args=["gtfs", "validate", str(write_feed(tmp_path / "f"))])
    assert result.exit_code == 0, result.output
    assert "valid (1 routes, 3 stops, 2 trips, 6 stop_times)" in result.output
    with get_db(app).session() as session:
        assert session.scalars(select(FeedVersion)).all() == []


def test_validate_missing_file_exits_one(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = runner.invoke(args=["gtfs", "validate", str(write_feed(tmp_path / "f", {"routes.txt": None}))])
    assert result.exit_code == 1
    assert "required file routes.txt is missing" in result.output


def test_activate_unknown_version_is_a_clear_error(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["gtfs", "activate", "4242"])
    assert result.exit_code != 0
    assert "feed version 4242 does not exist" in result.output


def test_import_from_a_url(runner: FlaskCliRunner, tmp_path: Path) -> None:
    import shutil
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    shutil.make_archive(str(tmp_path / "site" / "almaty"), "zip", write_feed(tmp_path / "feed"))
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "site"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        result = runner.invoke(args=["gtfs", "import", f"{base}/almaty.zip", "--no-canonical"])
        missing = runner.invoke(args=["gtfs", "import", f"{base}/nope.zip", "--no-canonical"])
    finally:
        server.shutdown()
    assert result.exit_code == 0, result.output
    assert "feed version" in result.output and "(almaty.zip) is active" in result.output
    assert missing.exit_code == 1 and "nope.zip" in missing.output and "404" in missing.output


def test_synth_writes_a_feed_that_imports(runner: FlaskCliRunner, tmp_path: Path) -> None:
    out = tmp_path / "city"
    result = runner.invoke(args=["gtfs", "synth", "--routes", "3", "--out", str(out), "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert (out / "stop_times.txt").exists() and "stop_times" in result.output
    imported = runner.invoke(args=["gtfs", "import", str(out), "--no-canonical"])
    assert imported.exit_code == 0, imported.output
    assert "3 routes" in imported.output


def test_simulate_shows_a_progress_bar_fed_by_the_days_written(runner: FlaskCliRunner, tmp_path: Path) -> None:
    """make demo's history step: the bar moves once per simulated day, and names the last day written."""
    result = runner.invoke(args=["simulate", "--feed", str(write_feed(tmp_path / "f")), "--start", "2026-03-02",
                                 "--days", "2", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "simulating days 1/2: 2026-03-02:" in result.output and "simulating days 2/2: 2026-03-03:" in result.output
    assert "wrote 2 days" in result.output
    assert len(list((tmp_path / "out").glob("pings_*.csv"))) == 2


def test_model_train_reports_its_three_phases(runner: FlaskCliRunner, tmp_path: Path) -> None:
    """make demo's training step: stop events, training set and fit each move the bar, with their sizes."""
    feed = write_feed(tmp_path / "f")
    simulated = runner.invoke(args=["simulate", "--feed", str(feed), "--start", "2026-03-02", "--days", "2",
                                    "--out", str(tmp_path / "out")])
    assert simulated.exit_code == 0, simulated.output
    pings = sorted(str(p) for p in (tmp_path / "out").glob("pings_*.csv"))
    result = runner.invoke(args=["model", "train", "--gtfs", str(feed), "--pings", pings[0], pings[1],
                                 "--models", str(tmp_path / "models")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("training ")]
    assert [line.split(":")[0] for line in lines] == ["training 1/3", "training 2/3", "training 3/3"], lines
    assert "stop events from the pings" in lines[0] and lines[2].endswith("quantile model fitted")


def test_progress_redraws_one_line_on_a_terminal() -> None:
    import io

    from app.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    with Progress("simulating days", 4, screen) as bar:
        bar.step("2026-03-02")
        bar.step("2026-03-03")
    text = screen.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "[############------------] 2/4 2026-03-03" in text
