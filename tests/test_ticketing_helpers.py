"""Shared fixtures of the ticketing tests: the ledger invariant check after every test, cards, devices, signing."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import get_db
from app.models import Device
from app.ticketing import cards, devices, ledger
from app.ticketing.context import Ticketing, get_ticketing
from app.ticketing.devices import DeviceCredentials
from app.ticketing.taps import TapRequest, TapResult, process_tap

__all__ = ["ctx", "ledger_checked", "make_card", "make_device", "send_tap", "signed", "tap_request"]

T0 = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)  # 08:00 in Almaty


@pytest.fixture
def ctx(app: Flask) -> Ticketing:
    return get_ticketing(app)


@pytest.fixture(autouse=True)
def ledger_checked(app: Flask) -> Iterator[None]:
    """After every test of a module that imports this fixture: the ledger invariants hold."""
    yield
    with get_db(app).session() as session:
        assert ledger.check_invariants(session) == []


def make_card(app: Flask, balance: int = 0, category: str = "standard", rider_id: int | None = None,
              number: str | None = None) -> tuple[int, str, str]:
    """(card id, number, code) of a new card topped up with ``balance`` tiyn from a kiosk."""
    ctx = get_ticketing(app)
    with get_db(app).session() as session:
        if category != "standard" and rider_id is None:
            from app.ticketing.riders import create_rider

            rider_id = create_rider(session, f"holder-{number or id(session)}@example.kz", "pw-123456").id
        card, number, code = cards.issue_card(session, ctx, category=category, number=number, rider_id=rider_id)
        if balance:
            cards.top_up(session, card, balance, "kiosk")
        session.commit()
        return card.id, number, code


def make_device(app: Flask, name: str = "bus-1 validator", kind: str = "validator") -> DeviceCredentials:
    """A registered device: a validator, or a top-up channel's (``kind`` kiosk or bank)."""
    with get_db(app).session() as session:
        creds = devices.register_device(session, name, get_ticketing(app).keys)
        session.get_one(Device, creds.device_id).kind = kind
        session.commit()
        return creds


def tap_request(device: str, seq: int, number: str, seconds: float = 0, vehicle: str = "bus-1",
                offline: bool = False, route: str | None = "R12") -> TapRequest:
    at = T0 + dt.timedelta(seconds=seconds)
    body = json.dumps([device, seq, number, vehicle, route, at.isoformat(), offline]).encode()
    return TapRequest(device, seq, number, vehicle, route, at, offline, hashlib.sha256(body).hexdigest())


def send_tap(app: Flask, req: TapRequest) -> TapResult:
    with get_db(app).session() as session:
        result = process_tap(session, get_ticketing(app), req)
        session.commit()
        return result


def signed(client: FlaskClient, creds: DeviceCredentials, method: str, path: str, payload: Any,
           headers: dict[str, str] | None = None, now: float | None = None) -> TestResponse:
    """A request signed like a validator's (v2: the query string and any ``Idempotency-Key`` in ``headers`` too)."""
    body = json.dumps(payload).encode()
    base_path, _, query = path.partition("?")
    extra = headers or {}
    all_headers = {**devices.signing_headers(creds, method, base_path, body, now=now, query=query,
                                             idempotency_key=extra.get("Idempotency-Key")), **extra}
    return client.open(path, method=method, data=body, headers=all_headers, content_type="application/json")
