"""Attempt limits on everything that takes a card code or a password: failed attempts are counted per subject
(a card, a rider account, a login, a client address) and, after ``free`` failures, the subject is locked for
``lockout_s`` seconds, doubling with every further failure up to ``max_lockout_s`` — so guessing a 3-digit code
or a password takes years instead of seconds. A locked subject is refused (429 + ``Retry-After``) before the
code or password is looked at, so a lockout also stops the attempt from costing a password hash.

Counters live in Redis; when Redis cannot be reached they live in ``auth_throttles`` (every lockout imposed in
Redis is copied there too, so it holds through a Redis outage). Subjects are stored as keyed hashes, never as
card numbers, logins or addresses.

A small module of our own rather than Flask-Limiter: what is needed is a failure counter with a lockout that
doubles, a reset on success and a database fallback — Flask-Limiter counts every request in fixed or moving
windows, cannot tell a wrong code from a right one, and has no fallback store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.cache import key
from app.errors import NotFound
from app.models import AuthThrottle
from app.ticketing.cardnumbers import CardNumberError, parse_number
from app.ticketing.errors import TooManyRequests, Unauthorized

__all__ = ["REDIS_DOWN", "Attempts", "Limit", "Limits", "Subject", "client_subject"]

# the Redis failures that send counting to the database (a wrong command or a bug still raises)
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# what a failed attempt raises: a wrong code (404, "no such card", said of unknown cards too) or password (401)
FAILURES = (NotFound, Unauthorized)
REDIS_RETRY_S = 5.0
_T = TypeVar("_T")


@dataclass(frozen=True)
class Limit:
    """How many failures one kind of subject may have before it is locked, and for how long."""

    scope: str  # card, rider, login, address: part of the key, at most 32 characters
    free: int = 5
    lockout_s: int = 30
    max_lockout_s: int = 3600
    forget_s: int = 3600  # failures are forgotten this long after the last one
    reset_on_success: bool = True  # a client address is not cleared by one right guess among many wrong ones

    def lockout(self, failures: int) -> float:
        """Seconds locked after the ``failures``-th failure (0 before ``free`` failures)."""
        if failures < self.free:
            return 0.0
        return float(min(self.max_lockout_s, self.lockout_s * 2 ** min(failures - self.free, 32)))


@dataclass(frozen=True)
class Limits:
    """The limit of each kind of subject: card codes are guessed per card, per account linking cards and per
    client address; passwords per login and per client address (separately: a mistyped code never locks a
    login). Client addresses get more room (many riders share one behind a NAT) and are not cleared by a
    success (one right guess among many wrong ones)."""

    card: Limit
    rider: Limit
    card_address: Limit
    login: Limit
    login_address: Limit

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Limits:
        timing = {"lockout_s": config["ATTEMPT_LOCKOUT_S"], "max_lockout_s": config["ATTEMPT_MAX_LOCKOUT_S"],
                  "forget_s": config["ATTEMPT_FORGET_S"]}
        free, address_free = config["ATTEMPT_FREE_FAILURES"], config["ATTEMPT_ADDRESS_FREE_FAILURES"]
        return cls(card=Limit("card", free, **timing), rider=Limit("rider", free, **timing),
                   card_address=Limit("card-address", address_free, reset_on_success=False, **timing),
                   login=Limit("login", free, **timing),
                   login_address=Limit("login-address", address_free, reset_on_success=False, **timing))


@dataclass(frozen=True)
class Subject:
    limit: Limit
    digest: str  # keyed hash of the card number, login, rider id or address


@dataclass(frozen=True)
class _State:
    failures: int
    locked_until: float  # epoch seconds; 0 when not locked


Clock = Callable[[], float]


class Attempts:
    """Counts failed attempts per subject; ``redis`` returns the client (connecting lazily), ``sessions`` opens a
    database session of its own (a failure is recorded even though the request's own transaction rolls back)."""

    def __init__(self, limits: Limits, redis_client: Callable[[], Any], sessions: Callable[[], Session],
                 secret: str, clock: Clock = time.time) -> None:
        self.limits = limits
        self._redis = redis_client
        self._sessions = sessions
        self._secret = secret.encode()
        self._clock = clock
        self._redis_down_until = 0.0

    def subject(self, limit: Limit, value: str) -> Subject:
        digest = hmac.new(self._secret, f"{limit.scope}\0{value}".encode(), hashlib.sha256).hexdigest()
        return Subject(limit, digest)

    def card_code(self, number: str, address: str | None, rider_id: int | None = None) -> list[Subject]:
        """Who is counted when a card's code is tried: the card, the client address and the rider, if any."""
        try:
            card = parse_number(number)  # "1234 5678 …" and "12345678…" are one card, one counter
        except CardNumberError:
            card = number
        subjects = [self.subject(self.limits.card, card),
                    self.subject(self.limits.card_address, client_subject(address))]
        if rider_id is not None:
            subjects.append(self.subject(self.limits.rider, str(rider_id)))
        return subjects

    def password(self, login: str, address: str | None) -> list[Subject]:
        """Who is counted when a password is tried: the login (however it is spelt) and the client address."""
        return [self.subject(self.limits.login, login.strip().lower()),
                self.subject(self.limits.login_address, client_subject(address))]

    @contextlib.contextmanager
    def guard(self, subjects: Sequence[Subject]) -> Iterator[None]:
        """Refuse if any subject is locked; count a failure (404/401 raised inside) against every subject, or
        clear them when the block completes."""
        self.check(subjects)
        try:
            yield
        except FAILURES:
            self.failed(subjects)
            raise
        self.succeeded(subjects)

    def check(self, subjects: Sequence[Subject]) -> None:
        """``TooManyRequests`` with ``retry_after`` while any of ``subjects`` is locked."""
        now = self._clock()
        wait = max((state.locked_until - now for state in self._states(subjects, now)), default=0.0)
        if wait > 0:
            raise TooManyRequests("too many failed attempts; try again later", retry_after=max(1, math.ceil(wait)))

    def failed(self, subjects: Sequence[Subject]) -> None:
        now = self._clock()
        for subject in subjects:
            try:
                state = self._on_redis(functools.partial(self._redis_failed, subject=subject, now=now))
            except REDIS_DOWN:
                self._db_failed(subject, now)
                continue
            if state.locked_until > now:
                self._db_store(subject, state, now)  # the lockout holds through a Redis outage

    def succeeded(self, subjects: Sequence[Subject]) -> None:
        cleared = [s for s in subjects if s.limit.reset_on_success]
        if not cleared:
            return
        try:
            replies = self._on_redis(lambda client: self._pipelined(
                client, [("hget", self._key(s), "u") for s in cleared] + [("delete", self._key(s)) for s in cleared]))
            mirrored = [s for s, until in zip(cleared, replies, strict=False) if until is not None]
        except REDIS_DOWN:
            mirrored = cleared
        if mirrored:
            self._db_clear(mirrored)

    # Redis: one hash per subject, f = failures, u = locked until (epoch seconds)

    def _on_redis(self, call: Callable[[Any], _T]) -> _T:
        """``call(client)``; after a Redis failure, straight to the database for REDIS_RETRY_S (an unreachable
        Redis costs a connect timeout per command, and a login touches several counters)."""
        if self._clock() < self._redis_down_until:
            raise redis.exceptions.ConnectionError("Redis was unreachable moments ago")
        try:
            return call(self._redis())
        except REDIS_DOWN:
            self._redis_down_until = self._clock() + REDIS_RETRY_S
            raise

    @staticmethod
    def _pipelined(client: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
        pipe = client.pipeline()
        for name, *args in commands:
            getattr(pipe, name)(*args)
        replies: list[Any] = pipe.execute()
        return replies

    @staticmethod
    def _key(subject: Subject) -> str:
        return key("attempts", subject.limit.scope, subject.digest)

    def _states(self, subjects: Sequence[Subject], now: float) -> list[_State]:
        try:
            replies = self._on_redis(lambda client: self._pipelined(
                client, [("hmget", self._key(s), "f", "u") for s in subjects]))
        except REDIS_DOWN:
            return [self._db_state(s, now) for s in subjects]
        return [_State(int(failures or 0), float(until or 0)) for failures, until in replies]

    def _redis_failed(self, client: Any, subject: Subject, now: float) -> _State:
        name, limit = self._key(subject), subject.limit
        # counted and given its expiry in one transaction: no counter is left behind without one
        failures = int(self._pipelined(client, [("hincrby", name, "f", 1), ("expire", name, limit.forget_s)])[0])
        locked = limit.lockout(failures)
        if not locked:
            return _State(failures, 0.0)
        self._pipelined(client, [("hset", name, "u", now + locked),
                                 ("expire", name, math.ceil(max(locked, limit.forget_s)))])
        return _State(failures, now + locked)

    # the database: the same counters in auth_throttles, each change in a transaction of its own

    def _db_state(self, subject: Subject, now: float) -> _State:
        with self._sessions() as session:
            row = session.get(AuthThrottle, (subject.limit.scope, subject.digest))
            return self._row_state(row, subject.limit, now)

    @staticmethod
    def _row_state(row: AuthThrottle | None, limit: Limit, now: float) -> _State:
        if row is None:
            return _State(0, 0.0)
        until = _epoch(row.locked_until) if row.locked_until else 0.0
        if until <= now and now - _epoch(row.updated_at) > limit.forget_s:
            return _State(0, 0.0)  # forgotten, as the Redis key would have expired
        return _State(row.failures, until)

    def _db_failed(self, subject: Subject, now: float) -> None:
        for _ in range(2):  # a concurrent first failure may insert the row between our read and insert
            with self._sessions() as session:
                row = self._locked_row(session, subject)
                failures = self._row_state(row, subject.limit, now).failures + 1
                locked = subject.limit.lockout(failures)
                values = {"failures": failures, "updated_at": _datetime(now),
                          "locked_until": _datetime(now + locked) if locked else None}
                if not self._db_write(session, subject, row, values):
                    continue
                return

    def _db_store(self, subject: Subject, state: _State, now: float) -> None:
        for _ in range(2):
            with self._sessions() as session:
                values = {"failures": state.failures, "updated_at": _datetime(now),
                          "locked_until": _datetime(state.locked_until)}
                if self._db_write(session, subject, self._locked_row(session, subject), values):
                    return

    @staticmethod
    def _locked_row(session: Session, subject: Subject) -> AuthThrottle | None:
        return session.scalar(select(AuthThrottle).where(AuthThrottle.scope == subject.limit.scope,
                                                         AuthThrottle.subject == subject.digest).with_for_update())

    @staticmethod
    def _db_write(session: Session, subject: Subject, row: AuthThrottle | None, values: dict[str, Any]) -> bool:
        """Update or insert the row and commit; ``False`` when another request inserted it first."""
        if row is None:
            session.add(AuthThrottle(scope=subject.limit.scope, subject=subject.digest, **values))
        else:
            for name, value in values.items():
                setattr(row, name, value)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return False
        return True

    def _db_clear(self, subjects: Sequence[Subject]) -> None:
        with self._sessions() as session:
            for subject in subjects:
                session.execute(delete(AuthThrottle).where(AuthThrottle.scope == subject.limit.scope,
                                                           AuthThrottle.subject == subject.digest))
            session.commit()


def client_subject(address: str | None) -> str:
    """The client address counted against: IPv6 clients by their /64 (one client is handed a whole /64)."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _epoch(value: dt.datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()


def _datetime(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)
