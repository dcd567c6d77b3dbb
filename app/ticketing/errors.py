"""Ticketing errors, mapped to the API's JSON error format by their ``status`` and ``code``.

    QalaError
    ├── Unauthorized          (401: a validator or rider failed authentication; ``code`` names why)
    ├── Forbidden             (403: authenticated, but not allowed to see or change this object)
    ├── Conflict              (409: an Idempotency-Key or tap key reused with a different body)
    ├── InsufficientFunds     (409: a transfer would take an account below its floor)
    └── TooManyRequests       (429: rate limit)
"""

from __future__ import annotations

from typing import Any

from app.errors import QalaError

__all__ = ["Conflict", "Forbidden", "InsufficientFunds", "TooManyRequests", "Unauthorized"]


class Unauthorized(QalaError):
    status = 401
    code = "unauthorized"

    def __init__(self, reason: str, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.code = reason


class Forbidden(QalaError):
    status = 403
    code = "forbidden"


class Conflict(QalaError):
    status = 409
    code = "conflict"


class InsufficientFunds(QalaError):
    status = 409
    code = "insufficient_funds"


class TooManyRequests(QalaError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
