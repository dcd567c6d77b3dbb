"""Attempt limits on everything that takes a card code or a password: failed attempts are counted per subject
(a card, a rider account, a login, a client address) and, after ``free`` failures, the subject is locked for
``lockout_s`` seconds, doubling with every further failure up to ``max_lockout_s`` — so guessing a 3-digit code
or a password takes years instead of seconds. A locked subject is refused (429 + ``Retry-After``) before the
code or password is looked at, so a lockout also stops the attempt from costing a password hash.

An attempt is counted as a failure when it *begins* (atomically with the lock check, for all its subjects at
once) and taken back when it ends well: however many requests an attacker sends at the same moment, only
``free`` of them get to try. Counters live in Redis (one Lua script per begin); when Redis cannot be reached
they live in ``auth_throttles`` (every lockout imposed in Redis is copied there too, so it holds through a
Redis outage). Subjects are stored as keyed hashes, never as card numbers, logins or addresses.

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
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.cache import REDIS_UNREACHABLE, RedisClient, key
from app.errors import NotFound
from app.instants import as_utc
from app.models import AuthThrottle
from app.ticketing.cardnumbers import CardNumberError, parse_number
from app.ticketing.errors import TooManyRequests, Unauthorized

__all__ = ["Attempt", "Attempts", "Limit", "Limits", "Subject", "client_subject"]

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


@dataclass
class Attempt:
    """One attempt in flight: its subjects, where it was counted and which lockouts it copied to the database."""

    subjects: Sequence[Subject]
    in_database: bool = False
    mirrored: list[Subject] = field(default_factory=list)


Clock = Callable[[], float]

# KEYS: the subjects' hashes; ARGV: now, then free, lockout_s, max_lockout_s, forget_s per subject. Refuses (with
# the longest wait) if any subject is locked; otherwise counts the attempt against every subject, locking those
# that reach their limit, and names them (index, failures, locked until) so they can be copied to the database.
_BEGIN = """
local now = tonumber(ARGV[1])
local wait = 0
for _, name in ipairs(KEYS) do
  local locked_until = tonumber(redis.call('HGET', name, 'u') or '0')
  if locked_until - now > wait then wait = locked_until - now end
end
if wait > 0 then return {'locked', tostring(wait)} end
local reply = {'counted'}
for i, name in ipairs(KEYS) do
  local at = 1 + (i - 1) * 4
  local free, lockout, most, ttl = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3]),
                                   tonumber(ARGV[at + 4])
  local failures = redis.call('HINCRBY', name, 'f', 1)
  if failures >= free then
    local lock = math.min(most, lockout * 2 ^ math.min(failures - free, 32))
    redis.call('HSET', name, 'u', tostring(now + lock))
    ttl = math.max(ttl, lock)
    reply[#reply + 1] = i .. ' ' .. failures .. ' ' .. tostring(now + lock)
  end
  redis.call('EXPIRE', name, math.ceil(ttl))
end
return reply
"""
# KEYS: subjects to take one counted attempt back from; ARGV: their free failures. A lock the attempt imposed
# goes with it.
_TAKE_BACK = """
for i, name in ipairs(KEYS) do
  local failures = redis.call('HINCRBY', name, 'f', -1)
  if failures <= 0 then redis.call('DEL', name)
  elseif failures < tonumber(ARGV[i]) then redis.call('HDEL', name, 'u') end
end
return 1
"""


class Attempts:
    """Counts attempts per subject; ``redis_client`` returns the client (connecting lazily), ``sessions`` opens a
    database session of its own (a failure stays counted though the request's own transaction rolls back)."""

    def __init__(self, limits: Limits, redis_client: Callable[[], RedisClient], sessions: Callable[[], Session],
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
        """Refuse (429) if any subject is locked; otherwise the block is one attempt: a 404 or 401 raised in it
        stays counted as a failure, completing clears the subjects, any other error takes the attempt back."""
        attempt = self.begin(subjects)
        try:
            yield
        except FAILURES:
            raise
        except BaseException:
            self.end(attempt, succeeded=False)
            raise
        self.end(attempt, succeeded=True)

    def begin(self, subjects: Sequence[Subject]) -> Attempt:
        """Count an attempt against every subject, or raise ``TooManyRequests`` (nothing counted) if one is locked."""
        now = self._clock()
        try:
            reply = self._on_redis(functools.partial(self._redis_begin, subjects=subjects, now=now))
        except REDIS_UNREACHABLE:
            return self._db_begin(subjects, now)
        if reply[0] in ("locked", b"locked"):
            raise _locked(float(reply[1]))
        attempt = Attempt(subjects)
        for imposed in reply[1:]:
            index, failures, until = (imposed.decode() if isinstance(imposed, bytes) else imposed).split()
            subject = subjects[int(index) - 1]
            self._db_upsert(subject, now, failures=int(failures), locked_until=float(until))
            attempt.mirrored.append(subject)  # the lockout holds through a Redis outage
        return attempt

    def end(self, attempt: Attempt, succeeded: bool) -> None:
        """Success clears the subjects that reset on success and takes the attempt back from the others; an
        attempt that neither failed nor succeeded is taken back from all."""
        cleared = [s for s in attempt.subjects if succeeded and s.limit.reset_on_success]
        kept = [s for s in attempt.subjects if s not in cleared]
        if attempt.in_database:
            self._db_end(cleared, kept)
            return
        # counted in Redis, which is gone: the count goes (or returns) with it
        with contextlib.suppress(*REDIS_UNREACHABLE):
            self._on_redis(functools.partial(self._redis_end, cleared=cleared, kept=kept))
        if attempt.mirrored:
            self._db_delete(attempt.mirrored)  # the lock copied there was this attempt's, or is cleared now

    # Redis: one hash per subject, f = failures, u = locked until (epoch seconds)

    def _on_redis(self, call: Callable[[RedisClient], _T]) -> _T:
        """``call(client)``; after a Redis failure, straight to the database for REDIS_RETRY_S (an unreachable
        Redis costs a connect timeout per command)."""
        if self._clock() < self._redis_down_until:
            raise redis.exceptions.ConnectionError("Redis was unreachable moments ago")
        try:
            return call(self._redis())
        except REDIS_UNREACHABLE:
            self._redis_down_until = self._clock() + REDIS_RETRY_S
            raise

    @staticmethod
    def _key(subject: Subject) -> str:
        return key("attempts", subject.limit.scope, subject.digest)

    def _redis_begin(self, client: RedisClient, subjects: Sequence[Subject], now: float) -> list[Any]:
        args: list[float | int] = [now]
        for subject in subjects:
            limit = subject.limit
            args += [limit.free, limit.lockout_s, limit.max_lockout_s, limit.forget_s]
        reply: list[Any] = client.register_script(_BEGIN)(keys=[self._key(s) for s in subjects], args=args)
        return reply

    def _redis_end(self, client: RedisClient, cleared: Sequence[Subject], kept: Sequence[Subject]) -> None:
        if cleared:
            client.delete(*(self._key(s) for s in cleared))
        if kept:
            client.register_script(_TAKE_BACK)(keys=[self._key(s) for s in kept], args=[s.limit.free for s in kept])

    # the database: the same counters in auth_throttles, each change in a transaction of its own

    def _db_begin(self, subjects: Sequence[Subject], now: float) -> Attempt:
        for _ in range(2):  # a concurrent first attempt may insert a row between our read and our insert
            with self._sessions() as session:
                rows = [self._row(session, s) for s in sorted(subjects, key=lambda s: (s.limit.scope, s.digest))]
                by_subject = {(r.scope, r.subject): r for r in rows if r is not None}
                found = [by_subject.get((s.limit.scope, s.digest)) for s in subjects]
                states = [_row_state(row, s.limit, now) for row, s in zip(found, subjects, strict=True)]
                wait = max((until - now for _, until in states), default=0.0)
                if wait > 0:
                    raise _locked(wait)
                for subject, row, (failures, _) in zip(subjects, found, states, strict=True):
                    lock = subject.limit.lockout(failures + 1)
                    self._write(session, subject, row, failures=failures + 1, updated_at=_datetime(now),
                                locked_until=_datetime(now + lock) if lock else None)
                try:
                    session.commit()
                except IntegrityError:
                    continue
                return Attempt(subjects, in_database=True)
        raise TooManyRequests("too many attempts at the same moment; try again", retry_after=1)

    def _db_end(self, cleared: Sequence[Subject], kept: Sequence[Subject]) -> None:
        self._db_delete(cleared)
        with self._sessions() as session:
            for subject in kept:
                row = self._row(session, subject)
                if row is None:
                    continue
                row.failures = max(0, row.failures - 1)
                if row.failures < subject.limit.free:
                    row.locked_until = None
            session.commit()

    def _db_upsert(self, subject: Subject, now: float, failures: int, locked_until: float) -> None:
        for _ in range(2):
            with self._sessions() as session:
                self._write(session, subject, self._row(session, subject), failures=failures,
                            updated_at=_datetime(now), locked_until=_datetime(locked_until))
                try:
                    session.commit()
                    return
                except IntegrityError:
                    continue

    def _db_delete(self, subjects: Sequence[Subject]) -> None:
        if not subjects:
            return
        with self._sessions() as session:
            for subject in subjects:
                session.execute(delete(AuthThrottle).where(AuthThrottle.scope == subject.limit.scope,
                                                           AuthThrottle.subject == subject.digest))
            session.commit()

    @staticmethod
    def _row(session: Session, subject: Subject) -> AuthThrottle | None:
        return session.scalar(select(AuthThrottle).where(AuthThrottle.scope == subject.limit.scope,
                                                         AuthThrottle.subject == subject.digest).with_for_update())

    @staticmethod
    def _write(session: Session, subject: Subject, row: AuthThrottle | None, **values: Any) -> None:
        if row is None:
            session.add(AuthThrottle(scope=subject.limit.scope, subject=subject.digest, **values))
        else:
            for name, value in values.items():
                setattr(row, name, value)


def _row_state(row: AuthThrottle | None, limit: Limit, now: float) -> tuple[int, float]:
    """(failures, locked until) of a database row; failures are forgotten as the Redis key would expire."""
    if row is None:
        return 0, 0.0
    until = _epoch(row.locked_until) if row.locked_until else 0.0
    if until <= now and now - _epoch(row.updated_at) > limit.forget_s:
        return 0, 0.0
    return row.failures, until


def _locked(wait: float) -> TooManyRequests:
    return TooManyRequests("too many failed attempts; try again later", retry_after=max(1, math.ceil(wait)))


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
    return as_utc(value).timestamp()


def _datetime(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)
