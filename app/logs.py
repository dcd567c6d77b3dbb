"""Log records scrubbed of secrets: card numbers, codes, passwords, tokens and password hashes never reach a log.

``scrub`` masks them in a text; ``SecretsFilter`` scrubs a record's message, traceback and stack in place.
``configure_logging`` puts the filter on the handlers there are at app creation (root, the app's, gunicorn's,
werkzeug's) and wraps the log record factory, so a record is scrubbed when it is made — also for handlers added
later (gunicorn's, pytest's). What is masked:

- a 19-digit card number, with or without spaces, dashes or ``+``/``%20`` between its groups → its masked form;
- ``scrypt:…$salt$hash`` and ``pbkdf2:…$salt$hash`` password hashes → ``<password hash>``;
- ``Bearer <token>`` / ``Basic <credentials>`` → ``Bearer ***``;
- the value after ``password``, ``code``, ``token``, ``secret``, ``authorization`` or ``cookie`` (also with
  ``_hash`` after or a prefix such as ``access_`` before) and ``=`` or ``:``, quoted or not → ``***``.

``configure_logging`` also gives the root logger one handler writing to standard error (the app's records, the
worker's and werkzeug's all end there, once), as ``QALA_LOG_FORMAT`` says: ``text`` lines, or ``json`` — one
object per line with ``time`` (RFC 3339, with its offset), ``level``, ``logger``, ``message`` and, when there is
one, ``exception`` (the traceback), for log collectors. ``app.*`` and ``prediction.*`` log from
``QALA_LOG_LEVEL`` on; libraries keep the root logger's level (warnings and worse unless set otherwise).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Callable
from typing import Any, TextIO

from flask import Flask
from flask.logging import default_handler

from app.config import get_settings
from app.ticketing.cardnumbers import mask

__all__ = ["JsonFormatter", "SecretsFilter", "StderrHandler", "configure_logging", "scrub"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
OWN_LOGGERS = ("app", "prediction")  # the packages' loggers (the Flask app's logger is "app")

MASK = "***"
_SEP = r"(?:[ +-]|%20)?"  # between a card number's printed groups (a query string writes spaces as + or %20)
_CARD = re.compile(rf"(?<![0-9])[0-9]{{4}}(?:{_SEP}[0-9]{{4}}){{3}}{_SEP}[0-9]{{3}}(?![0-9])")
_PASSWORD_HASH = re.compile(r"\b(?:scrypt|pbkdf2)(?::[A-Za-z0-9_]+)*\$[^\s$'\"]*\$[0-9a-fA-F]+")
_CREDENTIALS = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_SECRET_VALUE = re.compile(
    r"""(?P<key>["']?\b(?:access_|refresh_|csrf_|api_|auth_|card_|session_|client_|webhook_)?"""
    r"""(?:password|passwd|code|token|secret|authorization|cookie)(?:_hash)?["']?)"""
    r"""(?P<sep>\s*[:=]\s*)"""
    r"""(?!%\(|\?|\*\*\*)"""  # SQL bind placeholders (%(name)s, ?) and values masked already stay as they are
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s,;&)}\]]+)""",
    re.IGNORECASE,
)
_SCRUBBED = "_qala_scrubbed"


def _masked_value(found: re.Match[str]) -> str:
    value = found["value"]
    quote = value[0] if value[0] in "\"'" else ""
    return f"{found['key']}{found['sep']}{quote}{MASK}{quote}"


def scrub(text: str) -> str:
    """``text`` with card numbers, password hashes, credentials and secret values masked."""
    text = _PASSWORD_HASH.sub("<password hash>", text)
    text = _CREDENTIALS.sub(lambda found: f"{found[1]} {MASK}", text)
    text = _SECRET_VALUE.sub(_masked_value, text)
    return _CARD.sub(lambda found: mask(re.sub(r"[^0-9]", "", found[0])), text)


def _scrub_record(record: logging.LogRecord) -> None:
    seen = getattr(record, _SCRUBBED, None)  # what this record held when it was scrubbed, if it was
    if seen is not None and all(a is b for a, b in zip(seen, (record.msg, record.args, record.exc_text),
                                                        strict=True)):
        return
    try:
        message = record.getMessage()
    except Exception:  # a message whose arguments do not fit it: keep its parts apart, scrubbed
        message = f"{record.msg!s} {record.args!r}"
    clean = scrub(message)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    setattr(record, _SCRUBBED, (record.msg, record.args, record.exc_text))


class SecretsFilter(logging.Filter):
    """Scrubs every record in place (one scrubbed already and unchanged since is passed on as it is); never drops
    one."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub_record(record)
        return True


class _ScrubbingFactory:
    """The log record factory, scrubbing each record it makes."""

    def __init__(self, inner: Callable[..., logging.LogRecord]) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        _scrub_record(record)
        return record


def _add_filter(handler: logging.Handler) -> None:
    if not any(isinstance(f, SecretsFilter) for f in handler.filters):
        handler.addFilter(SecretsFilter())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (RFC 3339 in UTC, with its offset), ``level``, ``logger``, ``message``,
    and ``exception`` / ``stack`` when the record has them (scrubbed, whatever path the record took)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = scrub(record.exc_text)
        if record.stack_info:
            entry["stack"] = scrub(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False)


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes (as ``logging.lastResort`` does), so that output
    redirected later — a CLI runner's, pytest's — gets the records too."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:  # type: ignore[override]  # read at each record; nothing sets it (no setStream)
        return sys.stderr


def _install_stderr_handler(log_format: str, level: str) -> None:
    """One ``StderrHandler`` on the root logger (made once per process, re-formatted by each app created); our
    own loggers log from ``level``, libraries' keep the root's level (warnings and worse by default)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, StderrHandler)), None)
    if handler is None:
        handler = StderrHandler()
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)


def configure_logging(app: Flask) -> None:
    """Log to standard error as the settings say, and scrub secrets from every log record: a filter on the
    present handlers, and the record factory."""
    settings = get_settings(app)
    _install_stderr_handler(settings.log_format, settings.log_level)
    app.logger.removeHandler(default_handler)  # the app's records reach the root's handler: not twice
    for logger in (logging.getLogger(), app.logger, logging.getLogger("gunicorn.error"),
                   logging.getLogger("gunicorn.access"), logging.getLogger("werkzeug")):
        for handler in logger.handlers:
            _add_filter(handler)
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _ScrubbingFactory):
        logging.setLogRecordFactory(_ScrubbingFactory(factory))
