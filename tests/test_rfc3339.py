"""Every instant the API answers with carries its offset (RFC 3339), on SQLite — which hands stored instants back
without one — as on PostgreSQL (issue 17: card history read 5 hours off in the browser).

The walk seeds one of everything (a live board, a card with a tap, a paid top-up and a pass, a staff action, a
stop event, a week of reports), then asks every ``GET`` route under ``/api/v1`` the app has (path parameters
filled from the seed), plus the JSON the seeding ``POST``s answered, and checks each string that starts like a
date and time."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import get_db
from app.api import InstantJSONProvider
from app.models import FeedVersion, StopEvent
from tests.fixtures.accounts import account, staff
from tests.fixtures.boards import write_s2_board
from tests.fixtures.dashboard import WEEK, seed_week
from tests.fixtures.tickets import T0, make_card, make_device, signed
from tests.worker_feed import add_worker_feed

LOOKS_LIKE_AN_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
HTTP_DATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")
NOT_JSON = {"/api/v1/docs", "/api/v1/stops/<stop_id>/arrivals/stream"}  # HTML; the SSE events carry /arrivals


def _strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")
    elif isinstance(value, str):
        yield where, value


def offsetless(body: Any) -> list[str]:
    """Where ``body`` has a date-and-time string that is not RFC 3339 with an offset, or an HTTP date."""
    return [f"{where}={text!r}" for where, text in _strings(body)
            if (LOOKS_LIKE_AN_INSTANT.match(text) and not RFC3339.fullmatch(text)) or HTTP_DATE.fullmatch(text)]


def test_the_check_catches_what_it_should() -> None:
    bad = {"at": "2026-12-07T09:58:12", "x": [{"t": "2026-12-07 09:58:12+00:00"}, "Mon, 07 Dec 2026 09:58:12 GMT"]}
    good = {"at": "2026-12-07T09:58:12+05:00", "z": "2026-12-07T04:58:12Z", "day": "2026-12-07", "n": 3}
    assert offsetless(bad) == [".at='2026-12-07T09:58:12'", ".x[0].t='2026-12-07 09:58:12+00:00'",
                               ".x[1]='Mon, 07 Dec 2026 09:58:12 GMT'"]
    assert offsetless(good) == []


def test_a_datetime_left_in_a_body_is_written_with_its_offset(app: Flask) -> None:
    assert isinstance(app.json, InstantJSONProvider)
    naive = dt.datetime(2026, 12, 7, 4, 58, 12, tzinfo=dt.UTC).replace(tzinfo=None)  # as SQLite reads one back
    almaty = dt.datetime(2026, 12, 7, 9, 58, 12, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    assert app.json.loads(app.json.dumps({"a": naive, "b": almaty, "d": naive.date()})) == {
        "a": "2026-12-07T04:58:12+00:00", "b": "2026-12-07T09:58:12+05:00", "d": "2026-12-07"}


@pytest.fixture
def seeded(app: Flask, client: FlaskClient) -> dict[str, Any]:
    """One of everything the API can answer about, and the JSON bodies the seeding requests got back."""
    add_worker_feed(app)
    seed_week(app)
    write_s2_board(app)
    rider_id, rider = account(client, "alice@example.kz")
    admin = staff(app, client, "admin")
    card_id, number, code = make_card(app, balance=600000, category="student", rider_id=rider_id)
    answers = [client.post("/api/v1/me/cards", json={"card": number, "code": code}, headers=rider)]
    intent = client.post(f"/api/v1/cards/{card_id}/payment-intents", json={"amount": 50000}, headers=rider)
    intent_id = intent.get_json()["intent_id"]
    answers += [intent, client.post(f"/api/v1/payments/sandbox/intents/{intent_id}/pay",
                                    json={"outcome": "succeeded"}, headers=rider),
                client.post(f"/api/v1/cards/{card_id}/passes", json={"product": "pass_month"}, headers=rider),
                client.post(f"/api/v1/staff/cards/{card_id}/block", json={"reason": "lost"}, headers=admin),
                client.post(f"/api/v1/staff/cards/{card_id}/unblock", json={"reason": "found"}, headers=admin)]
    device = make_device(app)
    answers.append(signed(client, device, "POST", "/api/v1/validators/taps", {
        "seq": 1, "card": number, "vehicle_id": "bus-1", "route_id": "R12", "tapped_at": T0.isoformat()}))
    _stop_event(app)
    for answer in answers:
        assert answer.status_code < 300, (answer.request.path, answer.get_json())
    return {"rider": rider, "admin": admin, "card_id": card_id, "intent_id": intent_id, "device": device,
            "answers": [a.get_json() for a in answers]}


def _stop_event(app: Flask) -> None:
    """A stop event stored as the AVL ingest stores them: UTC instants (naive on SQLite when read back)."""
    at = dt.datetime(2026, 3, 10, 3, 0, 20, tzinfo=dt.UTC)
    with get_db(app).session() as session:
        feed_id = session.scalars(select(FeedVersion.id)).one()
        session.add(StopEvent(feed_version_id=feed_id, trip_id="T12-a", service_date=dt.date(2026, 3, 10),
                              stop_sequence=10, stop_id="S1", vehicle_id="bus-1", arrival_at=at,
                              departure_at=at + dt.timedelta(seconds=20), scheduled_arrival_at=at,
                              scheduled_departure_at=at, deviation_s=20, passed_between_pings=False))
        session.commit()


def _urls(app: Flask, client: FlaskClient, seeded: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every GET route under /api/v1 with its path parameters filled, and its query string."""
    reports = client.get("/api/v1/reports", headers=seeded["admin"]).get_json()["reports"]
    values = {"stop_id": "S2", "route_id": "R12", "card_id": str(seeded["card_id"]),
              "intent_id": seeded["intent_id"]}
    week = {"start": WEEK[0].isoformat(), "end": WEEK[-1].isoformat()}
    queries = {"/api/v1/avl/events": {"trip_id": "T12-a", "service_date": "2026-03-10"},
               "/api/v1/stops": {"q": "абай"}}
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or "GET" not in (rule.methods or ()) or rule.rule in NOT_JSON:
            continue
        if rule.rule == "/api/v1/reports/<name>":
            urls += [(f"/api/v1/reports/{r['name']}", week) for r in reports]
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<{name}>", values[name])
        urls.append((path, queries.get(rule.rule, {})))
    return urls


def test_every_instant_the_api_answers_has_its_offset(app: Flask, client: FlaskClient,
                                                      seeded: dict[str, Any]) -> None:
    problems = [f"seeding answer: {p}" for body in seeded["answers"] for p in offsetless(body)]
    checked = 0
    for path, query in _urls(app, client, seeded):
        if path.startswith("/api/v1/validators"):
            answer = signed(client, seeded["device"], "GET", path, None)
        else:
            answer = client.get(path, query_string=query, headers=seeded["admin"] if "cards" not in path
                                else seeded["rider"])
        assert answer.status_code == 200, (path, answer.get_data(as_text=True)[:300])
        body = answer.get_json()
        problems += [f"{path}: {p}" for p in offsetless(body)]
        checked += sum(1 for _, text in _strings(body) if RFC3339.fullmatch(text))
    assert problems == []
    assert checked > 50  # the walk saw instants: history, audit, boards, events, reports' stamps
