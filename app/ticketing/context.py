"""The ticketing collaborators of one application, kept in ``app.extensions["ticketing"]``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from app.cache import RedisClient
from app.ticketing.devices import NonceClaims
from app.ticketing.fareload import ProfileCache
from app.ticketing.fastpath import FastPath
from app.ticketing.keycrypt import KeyBox

__all__ = ["Ticketing", "get_ticketing"]


@dataclass
class Ticketing:
    hash_key: str
    profiles: ProfileCache
    keys: KeyBox = field(default_factory=lambda: KeyBox.from_secret("qala-dev-card-hash-key"))
    accounts: dict[str, int] = field(default_factory=dict)  # ids of system ledger accounts
    device_keys: dict[str, Any] = field(default_factory=dict)  # see app.ticketing.devices._key_secret
    fast: FastPath | None = None  # the one-round-trip online tap (PostgreSQL only)
    batch_slots: int = 4  # batch transactions at once in the service, PostgreSQL (0: unbounded; see batches)
    nonces: NonceClaims | None = None  # nonce claims of concurrent requests, pipelined (see device_auth)

    def nonce_claims(self, redis: RedisClient) -> NonceClaims:
        """The nonce claimer for this Redis client (made again if the client changed)."""
        found = self.nonces
        if found is None or found.redis is not redis:
            found = self.nonces = NonceClaims(redis)
        return found

    def close(self) -> None:
        """Close the fast path's connections (tests create many applications)."""
        if self.fast is not None:
            self.fast.close()


def get_ticketing(app: Flask) -> Ticketing:
    found = app.extensions.get("ticketing")
    if found is None:
        from app.extensions import get_db

        engine = get_db(app).engine
        fast = None
        if engine.dialect.name == "postgresql" and app.config["TAP_FAST_PATH"]:
            fast = FastPath(engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
        found = Ticketing(hash_key=app.config["CARD_HASH_KEY"], profiles=ProfileCache(app.config["FARE_PROFILE"]),
                          keys=KeyBox.from_config(app.config), fast=fast,
                          batch_slots=int(app.config["TAP_BATCH_SLOTS"]))
        app.extensions["ticketing"] = found
    return found
