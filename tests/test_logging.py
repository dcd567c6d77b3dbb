"""Logs: JSON lines for production (scrubbed like every record), and the worker's failures with their tracebacks."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import create_app
from app.logs import TEXT_FORMAT, JsonFormatter, StderrHandler, configure_logging
from app.worker.cli import _log_dropped_batch, _loop

NUMBER = "9643 1234 5678 9012 345"
RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)$"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The process's one stderr handler keeps the text format after a test switched it to JSON."""
    yield
    for handler in logging.getLogger().handlers:
        if isinstance(handler, StderrHandler):
            handler.setFormatter(logging.Formatter(TEXT_FORMAT))


def _app(tmp_path: Path, **overrides: Any) -> Flask:
    return create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'q.sqlite3'}",
                       "REDISLITE_PATH": str(tmp_path / "redis.db"), **overrides})


def test_a_json_line_carries_the_fields_and_no_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      restore_logging: None) -> None:
    configure_logging(_app(tmp_path, LOG_FORMAT="json"))
    capsys.readouterr()
    try:
        raise ValueError(f"card {NUMBER} refused, password=hunter2-hunter2")
    except ValueError:
        logging.getLogger("app.test").exception("tap by card=%s failed", NUMBER)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert {"time", "level", "logger", "message", "exception"} <= entry.keys()
    assert entry["level"] == "ERROR" and entry["logger"] == "app.test"
    assert re.match(RFC3339, entry["time"]) and dt.datetime.fromisoformat(entry["time"]).utcoffset() is not None
    assert entry["message"] == "tap by card=**** **** **** 9012 345 failed"
    assert "Traceback (most recent call last)" in entry["exception"] and "ValueError" in entry["exception"]
    for secret in (NUMBER, "hunter2-hunter2"):
        assert secret not in lines[0]


def test_the_json_formatter_scrubs_a_record_no_filter_saw() -> None:
    """A record made elsewhere (without the scrubbing factory) is scrubbed by the formatter all the same."""
    record = logging.makeLogRecord({"name": "gunicorn.error", "levelno": logging.WARNING, "levelname": "WARNING",
                                    "msg": "token=%s", "args": ("abc.def.ghi",)})
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "token=***" and "exception" not in entry


def test_text_is_the_default_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(_app(tmp_path))
    capsys.readouterr()
    logging.getLogger("app.test").info("board for stop %s written", "S1")
    assert capsys.readouterr().err.rstrip().endswith("INFO app.test: board for stop S1 written")


class _FailingWorker:
    def cycle(self, now: float, events: Any, pings: Any) -> Any:
        raise ConnectionError("redis away")

    def flush(self) -> None:
        pass


class _NoPings:
    def poll(self, now: float) -> tuple[None, None]:
        return None, None


def test_a_failed_cycle_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="app.worker.cli"):
        _loop(_FailingWorker(), _NoPings(), None, cycle_s=0.5, cycles=1, quiet=False)  # type: ignore[arg-type]
    [record] = [r for r in caplog.records if r.name == "app.worker.cli"]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert "cycle failed" in record.getMessage()
    assert "Traceback (most recent call last)" in caplog.text and "ConnectionError: redis away" in caplog.text


def test_a_dropped_prediction_log_batch_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise TimeoutError("database away")
    except TimeoutError as exc:
        with caplog.at_level(logging.ERROR, logger="app.worker.cli"):
            _log_dropped_batch(exc)
    assert "prediction log" in caplog.text and "TimeoutError: database away" in caplog.text
    assert "Traceback (most recent call last)" in caplog.text

