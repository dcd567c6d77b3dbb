"""Domain errors of the service.

    QalaError
    ├── NotFound            (404: an id that does not exist in the active feed)
    ├── BadRequest          (400: a parameter is missing or malformed; names the field)
    └── NoActiveFeed        (503: no schedule has been imported yet)

Feed import errors live in ``prediction.gtfs.feedcheck`` (``FeedInvalid``) because validation is pure.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BadRequest", "NoActiveFeed", "NotFound", "QalaError"]


class QalaError(Exception):
    """Base class; carries an HTTP status, a machine code and details for the JSON error body."""

    status = 500
    code = "internal_error"
    retry_after: int | None = None  # seconds; answered as the Retry-After header (429, 503)

    def __init__(self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or {}


class NotFound(QalaError):
    status = 404
    code = "not_found"


class BadRequest(QalaError):
    status = 400
    code = "bad_request"


class NoActiveFeed(QalaError):
    status = 503
    code = "no_active_feed"
