"""Validator devices: registration, key rotation with an overlap, and request signature checks.

A device signs every request with HMAC-SHA256 over (signature v2)
``METHOD\\nPATH\\nQUERY\\nTIMESTAMP\\nNONCE\\nIDEMPOTENCY_KEY\\nSHA256(BODY)`` — ``QUERY`` is the raw query
string as sent (percent-encoded, without ``?``; empty when there is none), ``IDEMPOTENCY_KEY`` the
``Idempotency-Key`` header's value (empty when absent) — and sends ``X-Qala-Device``, ``X-Qala-Key``,
``X-Qala-Timestamp`` (Unix seconds), ``X-Qala-Nonce`` and ``X-Qala-Signature`` (hex). Requests more than
``MAX_SKEW_S`` away from the server clock, with a nonce seen before (Redis ``SET NX`` with a TTL longer than
the window), or with a bad signature are refused; an endpoint may also require a device kind (403 otherwise).
Keys are stored sealed (``app.ticketing.keycrypt``) and opened when a worker first needs one.

Nonces across a Redis restart: the claims live in Redis only (a database write per tap would cost the online
path its speed), so a Redis that lost its data (a restart without persistence, a FLUSHALL, a failover to a
replica behind) would take a replayed request as new. Every claim pipeline therefore also does
``SET nonce-epoch <now> NX`` and reads it back: the first claim after the store came up empty stamps the
epoch, and a request signed more than ``EPOCH_GRACE_S`` before the epoch is refused (``stale_request``:
its nonce may have been claimed before the loss; the device signs again with a fresh timestamp). No extra
round trip: the two commands ride in the pipeline that claims the nonces.

Residual window (documented, accepted): a request claimed before the loss whose signed timestamp is within
``EPOCH_GRACE_S`` of the epoch, or ahead of the server clock (up to ``MAX_SKEW_S`` of allowed skew), could be
replayed once after the loss until its timestamp leaves the window. The grace exists so that the request that
stamps the epoch (and any signed a moment before it) is not refused; the future skew is the validators' clock
error we tolerate. Nonce keys evicted by a Redis ``maxmemory`` policy are not covered: run it with
``noeviction``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import Headers

from app.cache import RedisClient, key
from app.models import Device, DeviceKey
from app.ticketing.coalesce import Coalescer
from app.ticketing.errors import Forbidden, Unauthorized
from app.ticketing.keycrypt import KeyBox, SealError

__all__ = ["EPOCH_KEY", "Claim", "DeviceCredentials", "NonceClaims", "claim_request_nonce", "nonce_key",
           "register_device", "reseal_keys", "rotate_key", "sign", "signing_headers", "verify_request"]

log = logging.getLogger(__name__)

MAX_SKEW_S = 300
NONCE_TTL_S = 2 * MAX_SKEW_S + 60
DEFAULT_OVERLAP = dt.timedelta(days=7)
KEY_CACHE_S = 30.0
EPOCH_KEY = key("nonce-epoch")  # when the nonce store last came up empty (Unix seconds); see the module docstring
EPOCH_GRACE_S = 2


@dataclass(frozen=True)
class DeviceCredentials:
    device_id: str
    key_id: str
    secret: str


def register_device(session: Session, name: str, box: KeyBox, kind: str = "validator") -> DeviceCredentials:
    device = Device(id="dev_" + secrets.token_hex(8), name=name, active=True, kind=kind)
    session.add(device)
    session.flush()
    return _new_key(session, device.id, box)


def _new_key(session: Session, device_id: str, box: KeyBox) -> DeviceCredentials:
    creds = DeviceCredentials(device_id, "key_" + secrets.token_hex(8), secrets.token_hex(32))
    session.add(DeviceKey(id=creds.key_id, device_id=device_id, secret_sealed=box.seal(creds.key_id, creds.secret)))
    session.flush()
    return creds


def reseal_keys(session: Session, box: KeyBox) -> int:
    """Re-seal every device key under the first key-encryption key (after adding a new one); returns the count."""
    rows = session.scalars(select(DeviceKey)).all()
    for row in rows:
        row.secret_sealed = box.seal(row.id, box.open(row.id, row.secret_sealed))
    session.flush()
    return len(rows)


def rotate_key(session: Session, device_id: str, overlap: dt.timedelta = DEFAULT_OVERLAP,
               now: dt.datetime | None = None, *, box: KeyBox) -> DeviceCredentials:
    """A new key; the device's current keys stay valid for ``overlap`` so validators switch without a gap."""
    if session.get(Device, device_id) is None:
        raise LookupError(f"no device {device_id}")
    until = (now or dt.datetime.now(dt.UTC)) + overlap
    for old in session.scalars(select(DeviceKey).where(DeviceKey.device_id == device_id)):
        if old.expires_at is None or _utc(old.expires_at) > until:
            old.expires_at = until
    return _new_key(session, device_id, box)


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes, *, query: str = "",
         idempotency_key: str | None = None) -> str:
    """Signature v2 (see the module docstring)."""
    message = "\n".join([method.upper(), path, query, timestamp, nonce, idempotency_key or "",
                         hashlib.sha256(body).hexdigest()])
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signing_headers(creds: DeviceCredentials, method: str, path: str, body: bytes,
                    now: float | None = None, nonce: str | None = None, *, query: str = "",
                    idempotency_key: str | None = None) -> dict[str, str]:
    """The headers a device sends (used by tests, benchmarks and simulators); ``query`` is the raw query string
    without ``?``. ``Idempotency-Key`` is not among them: send it as signed."""
    timestamp = str(int(now if now is not None else dt.datetime.now(dt.UTC).timestamp()))
    nonce = nonce or secrets.token_hex(12)
    signature = sign(creds.secret, method, path, timestamp, nonce, body, query=query, idempotency_key=idempotency_key)
    return {"X-Qala-Device": creds.device_id, "X-Qala-Key": creds.key_id, "X-Qala-Timestamp": timestamp,
            "X-Qala-Nonce": nonce, "X-Qala-Signature": signature}


def _open(box: KeyBox, key_id: str, sealed: str) -> str | None:
    """The opened key, or ``None`` (logged) when no configured key-encryption key opens it."""
    try:
        return box.open(key_id, sealed)
    except SealError as exc:
        log.error("%s; check QALA_KEY_ENCRYPTION_KEY", exc)
        return None


@dataclass(frozen=True)
class _Key:
    """A key as ``_device_key`` remembers it: the owner, its opened secret (``None``: unusable), expiry and kind."""

    owner: str
    secret: str | None
    expires_at: dt.datetime | None
    kind: str
    read_at: float


def _device_key(sessions: Callable[[], Session], box: KeyBox, device_id: str, key_id: str, now: dt.datetime,
                cache: dict[str, Any] | None) -> _Key | None:
    """A valid key of the device with its kind; remembered for ``KEY_CACHE_S`` (so a revoked key, or a changed
    kind, may work that long). A session is opened only on a miss: most requests need no database before the
    tap itself."""
    cached = cache.get(key_id) if cache is not None else None
    if not isinstance(cached, _Key) or time.monotonic() - cached.read_at > KEY_CACHE_S:
        with sessions() as session:
            row = session.execute(select(DeviceKey.device_id, DeviceKey.secret_sealed, DeviceKey.expires_at,
                                         Device.kind)
                                  .join(Device, Device.id == DeviceKey.device_id)
                                  .where(DeviceKey.id == key_id, Device.active.is_(True))).first()
        cached = _Key(row[0], _open(box, key_id, row[1]), _utc(row[2]) if row[2] else None, str(row[3]),
                      time.monotonic()) if row else _Key("", None, None, "", time.monotonic())
        if cache is not None:
            cache[key_id] = cached
    if cached.owner != device_id or cached.secret is None or (
            cached.expires_at is not None and cached.expires_at <= now):
        return None
    return cached


Claim = tuple[str, int]  # a nonce's Redis key, and the signed timestamp of the request that carries it


def _replayed() -> Unauthorized:
    return Unauthorized("replayed_nonce", "this nonce was already used")


def _before_epoch() -> Unauthorized:
    return Unauthorized("stale_request", "signed before the server's nonce store was last emptied; sign again "
                                         "with a fresh timestamp")


class NonceClaims:
    """``claim((key, timestamp))`` is Redis ``SET key 1 NX EX NONCE_TTL_S`` plus the nonce-epoch check (module
    docstring); the claims concurrent requests of one process make together go to Redis as one pipeline (one
    round trip; see ``app.ticketing.coalesce``). The online tap's fast path claims its group's nonces itself, with
    ``claim_all``, in the same group as the taps. Redis errors propagate (the API answers 503)."""

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self._group: Coalescer[Claim, Unauthorized | None] = Coalescer(self.claim_all, 64)

    def claim_all(self, claims: list[Claim]) -> list[Unauthorized | None]:
        """Claim every key in one round trip; per claim ``None`` when it was new (first come when repeated) and
        signed after the epoch, else the refusal."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(EPOCH_KEY, repr(time.time()), nx=True)
        pipe.get(EPOCH_KEY)
        for nonce, _ in claims:
            pipe.set(nonce, 1, nx=True, ex=NONCE_TTL_S)
        replies = pipe.execute()
        oldest = float(replies[1] or 0) - EPOCH_GRACE_S
        return [_replayed() if not new else _before_epoch() if signed < oldest else None
                for new, (_, signed) in zip(replies[2:], claims, strict=True)]

    def claim(self, claim: Claim) -> Unauthorized | None:
        """``None`` when the key was new (and is now taken) and the request was signed after the epoch."""
        return self._group.submit(claim)


def nonce_key(device_id: str, nonce: str) -> str | None:
    """The Redis key that claims a device's nonce; ``None`` for a nonce too long to be one (refused as replayed)."""
    return key("nonce", device_id, nonce) if len(nonce) <= 64 else None


SIGNATURE_HEADERS = ("X-Qala-Device", "X-Qala-Key", "X-Qala-Timestamp", "X-Qala-Nonce", "X-Qala-Signature")


def verify_request(sessions: Callable[[], Session], redis: RedisClient, headers: Mapping[str, str] | Headers,
                   method: str, path: str, body: bytes, now: dt.datetime | None = None,
                   cache: dict[str, Any] | None = None,
                   *, box: KeyBox, nonces: NonceClaims | None = None, claim_nonce: bool = True, query: str = "",
                   idempotency_key: str | None = None, kinds: Collection[str] | None = None) -> str:
    """The authenticated device id; raises ``Unauthorized`` with a reason code otherwise, ``Forbidden`` when the
    device's kind is not one of ``kinds`` (any kind when ``None``).

    ``query`` is the raw query string and ``idempotency_key`` the ``Idempotency-Key`` header (both signed).
    ``claim_nonce=False`` checks everything but the nonce, which the caller must then claim (``nonce_key``) before
    acting on the request: the online tap's fast path claims it together with its group's other nonces."""
    values = [headers.get(n) for n in SIGNATURE_HEADERS]
    if not all(values):
        raise Unauthorized("missing_signature", f"sign the request with headers {', '.join(SIGNATURE_HEADERS)}")
    device_id, key_id, timestamp, nonce, signature = (str(v) for v in values)
    current = now or dt.datetime.now(dt.UTC)
    if not timestamp.isdigit() or len(timestamp) > 12 or abs(current.timestamp() - int(timestamp)) > MAX_SKEW_S:
        raise Unauthorized("stale_request", f"the timestamp is more than {MAX_SKEW_S} s from the server clock")
    found = _device_key(sessions, box, device_id, key_id, current, cache)
    secret = found.secret if found is not None else None
    expected = sign(secret or "", method, path, timestamp, nonce, body, query=query, idempotency_key=idempotency_key)
    if found is None or secret is None or not hmac.compare_digest(expected, signature):
        raise Unauthorized("bad_signature", "the signature does not match (unknown or expired key, or bad MAC)")
    if kinds is not None and found.kind not in kinds:
        raise Forbidden(f"a {found.kind} device may not call this endpoint")
    if claim_nonce:
        claim_request_nonce(nonces or NonceClaims(redis), device_id, nonce, int(timestamp))
    return device_id


def claim_request_nonce(nonces: NonceClaims, device_id: str, nonce: str, timestamp: int) -> None:
    """Claim a verified request's nonce; ``Unauthorized`` when it was used before or signed before the epoch.
    Redis errors propagate."""
    claim = nonce_key(device_id, nonce)
    if claim is None:
        raise _replayed()
    refused = nonces.claim((claim, timestamp))
    if refused is not None:
        raise refused
