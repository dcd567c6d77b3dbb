"""The requests answered in front of Flask: validators' online taps and the displays' board polls.

Two kinds of request are the busiest and wait on their answer: a validator's online tap, with a rider at the
door, and every smart-stop display's poll of its board, every few seconds. Each is answered by a WSGI middleware
before Flask, without the request context, session cookie, routing and hooks Flask spends on every request
(``bench/taps.py`` and ``bench/display.py`` measure both against bare endpoints), with the status, headers (the
security headers too) and body Flask's view would give, because both call the same functions:

- ``FastTaps`` (``app.api.validators``, setting ``TAP_FAST_PATH``): a signed
  ``POST /api/v1/validators/taps`` without an ``Idempotency-Key`` is verified and applied through the
  group-commit path on PostgreSQL (``app.ticketing.fastpath``). It also bounds the body of every validator
  request (413) and answers a Redis or database outage with 503 itself.
- ``BoardPolls`` (``app.realtime.serving``, setting ``ARRIVALS_FAST_PATH``): a
  ``GET /api/v1/stops/<stop_id>/arrivals`` with no query string or only ``limit``, for a stop whose board is in
  Redis, is answered from that board after one Redis round trip (``arrivals_reply``, as the view does), gzipped
  as Flask's compression hook would for a client that takes it (``app.realtime.serving.compressed``).

Whatever they cannot answer goes on to Flask unchanged, which answers it as if they were not there; each such
fallback is logged by the middleware's module (DEBUG for the expected ones, WARNING for an outage, ERROR with the
traceback for an unexpected error). Both settings are ``create_app`` config keys, true unless set false (a false
``TAP_FAST_PATH`` also turns off the group-commit path, ``app.ticketing.context``).

The WSGI stack, outermost first: ``BodyLimit`` (``app.api.inputs``; ``register_api`` installs it last), ``FastTaps``,
``BoardPolls``, ``ProxyFix`` (``trust_proxies``, when ``PROXY_HOPS`` is set), Flask. Neither fast path reads the
client address or scheme, so ProxyFix stays behind them: only the requests that reach Flask pay for it.
"""

from __future__ import annotations

from flask import Flask

__all__ = ["install_fast_paths"]


def install_fast_paths(app: Flask) -> None:
    """Put ``BoardPolls`` and then ``FastTaps`` in front of ``app.wsgi_app``, each unless its setting is false.

    Call it after ``trust_proxies`` and before the blueprints are registered (the body limit goes in front)."""
    # imported here: both modules import ``app`` (get_db, get_redis), which imports this one
    from app.api.validators import FastTaps
    from app.realtime.serving import BoardPolls

    if app.config["ARRIVALS_FAST_PATH"]:
        app.wsgi_app = BoardPolls(app, app.wsgi_app)  # type: ignore[method-assign]
    if app.config["TAP_FAST_PATH"]:
        app.wsgi_app = FastTaps(app, app.wsgi_app)  # type: ignore[method-assign]
