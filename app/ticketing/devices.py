"""Validator devices: registration, key rotation with an overlap, and request signature checks.

A validator signs every request with HMAC-SHA256 over ``METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\nSHA256(BODY)``
and sends ``X-Qala-Device``, ``X-Qala-Key``, ``X-Qala-Timestamp`` (Unix seconds), ``X-Qala-Nonce`` and
``X-Qala-Signature`` (hex). Requests more than ``MAX_SKEW_S`` away from the server clock, with a nonce
seen before (Redis ``SET NX`` with a TTL longer than the window), or with a bad signature are refused.
Keys are stored sealed (``app.ticketing.keycrypt``) and opened when a worker first needs one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import Headers

from app.cache import key
from app.models import Device, DeviceKey
from app.ticketing.coalesce import Coalescer
from app.ticketing.errors import Unauthorized
from app.ticketing.keycrypt import KeyBox, SealError

__all__ = ["DeviceCredentials", "NonceClaims", "nonce_key", "register_device", "reseal_keys", "rotate_key", "sign",
           "signing_headers", "verify_request"]

log = logging.getLogger(__name__)

MAX_SKEW_S = 300
NONCE_TTL_S = 2 * MAX_SKEW_S + 60
DEFAULT_OVERLAP = dt.timedelta(days=7)
KEY_CACHE_S = 30.0


@dataclass(frozen=True)
class DeviceCredentials:
    device_id: str
    key_id: str
    secret: str


def register_device(session: Session, name: str, box: KeyBox) -> DeviceCredentials:
    device = Device(id="dev_" + secrets.token_hex(8), name=name, active=True)
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


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = "\n".join([method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()])
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signing_headers(creds: DeviceCredentials, method: str, path: str, body: bytes,
                    now: float | None = None, nonce: str | None = None) -> dict[str, str]:
    """The headers a validator sends (used by tests, benchmarks and simulators)."""
    timestamp = str(int(now if now is not None else dt.datetime.now(dt.UTC).timestamp()))
    nonce = nonce or secrets.token_hex(12)
    return {"X-Qala-Device": creds.device_id, "X-Qala-Key": creds.key_id, "X-Qala-Timestamp": timestamp,
            "X-Qala-Nonce": nonce, "X-Qala-Signature": sign(creds.secret, method, path, timestamp, nonce, body)}


def _open(box: KeyBox, key_id: str, sealed: str) -> str | None:
    """The opened key, or ``None`` (logged) when no configured key-encryption key opens it."""
    try:
        return box.open(key_id, sealed)
    except SealError as exc:
        log.error("%s; check QALA_KEY_ENCRYPTION_KEY", exc)
        return None


def _key_secret(sessions: Callable[[], Session], box: KeyBox, device_id: str, key_id: str, now: dt.datetime,
                cache: dict[str, Any] | None) -> str | None:
    """The opened secret of a valid key; remembered for ``KEY_CACHE_S`` (so a revoked key may work that long).
    A session is opened only on a miss: most requests need no database before the tap itself."""
    cached = cache.get(key_id) if cache is not None else None
    if cached is None or time.monotonic() - cached[3] > KEY_CACHE_S:
        with sessions() as session:
            row = session.execute(select(DeviceKey.device_id, DeviceKey.secret_sealed, DeviceKey.expires_at)
                                  .join(Device, Device.id == DeviceKey.device_id)
                                  .where(DeviceKey.id == key_id, Device.active.is_(True))).first()
        cached = (row[0], _open(box, key_id, row[1]), _utc(row[2]) if row[2] else None, time.monotonic()) if row \
            else ("", None, None, time.monotonic())
        if cache is not None:
            cache[key_id] = cached
    owner, secret, expires_at, _ = cached
    if owner != device_id or secret is None or (expires_at is not None and expires_at <= now):
        return None
    return str(secret)


class NonceClaims:
    """``claim(key)`` is Redis ``SET key 1 NX EX NONCE_TTL_S``; the claims concurrent requests of one process make
    together go to Redis as one pipeline (one round trip; see ``app.ticketing.coalesce``). The online tap's fast
    path claims its group's nonces itself, with ``claim_all``, in the same group as the taps."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._group: Coalescer[str, bool] = Coalescer(self.claim_all, 64)

    def claim_all(self, keys: list[str]) -> list[bool]:
        """Claim every key in one round trip; True for each key that was new (first come when repeated)."""
        if len(keys) == 1:
            return [bool(self.redis.set(keys[0], 1, nx=True, ex=NONCE_TTL_S))]
        pipe = self.redis.pipeline(transaction=False)
        for k in keys:
            pipe.set(k, 1, nx=True, ex=NONCE_TTL_S)
        return [bool(v) for v in pipe.execute()]

    def claim(self, nonce_key: str) -> bool:
        """True when the key was new (and is now taken)."""
        return self._group.submit(nonce_key)


def nonce_key(device_id: str, nonce: str) -> str | None:
    """The Redis key that claims a device's nonce; ``None`` for a nonce too long to be one (refused as replayed)."""
    return key("nonce", device_id, nonce) if len(nonce) <= 64 else None


def verify_request(sessions: Callable[[], Session], redis: Any, headers: Mapping[str, str] | Headers, method: str,
                   path: str, body: bytes, now: dt.datetime | None = None, cache: dict[str, Any] | None = None,
                   *, box: KeyBox, nonces: NonceClaims | None = None, claim_nonce: bool = True) -> str:
    """The authenticated device id; raises ``Unauthorized`` with a reason code otherwise.

    ``claim_nonce=False`` checks everything but the nonce, which the caller must then claim (``nonce_key``) before
    acting on the request: the online tap's fast path claims it together with its group's other nonces."""
    names = ("X-Qala-Device", "X-Qala-Key", "X-Qala-Timestamp", "X-Qala-Nonce", "X-Qala-Signature")
    values = [headers.get(n) for n in names]
    if not all(values):
        raise Unauthorized("missing_signature", f"sign the request with headers {', '.join(names)}")
    device_id, key_id, timestamp, nonce, signature = (str(v) for v in values)
    current = now or dt.datetime.now(dt.UTC)
    if not timestamp.isdigit() or abs(current.timestamp() - int(timestamp)) > MAX_SKEW_S:
        raise Unauthorized("stale_request", f"the timestamp is more than {MAX_SKEW_S} s from the server clock")
    secret = _key_secret(sessions, box, device_id, key_id, current, cache)
    expected = sign(secret or "", method, path, timestamp, nonce, body)
    if secret is None or not hmac.compare_digest(expected, signature):
        raise Unauthorized("bad_signature", "the signature does not match (unknown or expired key, or bad MAC)")
    if not claim_nonce:
        return device_id
    claim = nonce_key(device_id, nonce)
    fresh = claim is not None and (nonces.claim(claim) if nonces is not None
                                   else redis.set(claim, 1, nx=True, ex=NONCE_TTL_S))
    if not fresh:
        raise Unauthorized("replayed_nonce", "this nonce was already used")
    return device_id
