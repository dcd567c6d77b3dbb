"""The ticketing collaborators of one application, kept in ``app.extensions["ticketing"]``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from app.ticketing.fareload import ProfileCache

__all__ = ["Ticketing", "get_ticketing"]


@dataclass
class Ticketing:
    hash_key: str
    profiles: ProfileCache
    accounts: dict[str, int] = field(default_factory=dict)  # ids of system ledger accounts
    device_keys: dict[str, Any] = field(default_factory=dict)  # see app.ticketing.devices.KeyCache


def get_ticketing(app: Flask) -> Ticketing:
    found = app.extensions.get("ticketing")
    if found is None:
        found = Ticketing(hash_key=app.config["CARD_HASH_KEY"], profiles=ProfileCache(app.config["FARE_PROFILE"]))
        app.extensions["ticketing"] = found
    return found
