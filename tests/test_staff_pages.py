"""Staff login and roles: CSRF on every form, sessions that expire, analyst 403 on card operations, the
audit log, and the report API's CSV agreeing with its JSON."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import update

from app import get_db
from app.models import StaffSession
from app.reports.facts import insert_boardings
from app.reports.rollups import RollupSettings, rebuild_dates
from tests.fixtures.accounts import PASSWORD, create_user, csrf, log_in
from tests.fixtures.boards import write_vehicles
from tests.fixtures.rollups import ALMATY, DAY_ROWS
from tests.fixtures.tickets import make_card


def test_login_needs_the_csrf_token_and_a_staff_role(client: FlaskClient, runner: FlaskCliRunner) -> None:
    create_user(runner, "ana@qala.kz", "analyst")
    assert client.get("/staff/").status_code == 302
    refused = client.post("/staff/login", data={"login": "ana@qala.kz", "password": PASSWORD})
    assert refused.status_code == 400
    runner.invoke(args=["riders", "create", "rider@qala.kz", "--password", PASSWORD])
    token = csrf(client.get("/staff/login").get_data(as_text=True))
    wrong = client.post("/staff/login", data={"csrf_token": token, "login": "rider@qala.kz", "password": PASSWORD})
    assert wrong.status_code == 401
    log_in(client, "ana@qala.kz")
    assert "Ridership and revenue" in client.get("/staff/").get_data(as_text=True)


def test_analyst_gets_403_on_card_operations(client: FlaskClient, runner: FlaskCliRunner, app: Flask) -> None:
    create_user(runner, "ana@qala.kz", "analyst")
    card_id, _, _ = make_card(app)
    log_in(client, "ana@qala.kz")
    assert client.get("/staff/cards").status_code == 403
    assert client.get("/staff/users").status_code == 403
    bearer = client.post("/api/v1/riders/login", json={"login": "ana@qala.kz", "password": PASSWORD}).get_json()
    api = client.post(f"/api/v1/staff/cards/{card_id}/block", json={"reason": "lost"},
                      headers={"Authorization": f"Bearer {bearer['token']}", "Idempotency-Key": "b1"})
    assert api.status_code == 403
    assert client.get("/api/v1/reports/boardings-by-hour",
                      headers={"Authorization": f"Bearer {bearer['token']}"}).status_code == 200


def test_support_blocks_a_card_with_csrf_and_it_is_audited(client: FlaskClient, runner: FlaskCliRunner,
                                                            app: Flask) -> None:
    create_user(runner, "sup@qala.kz", "support")
    card_id, _, _ = make_card(app)
    token = log_in(client, "sup@qala.kz")
    form = {"card_id": str(card_id), "reason": "reported stolen", "action": "block"}
    assert client.post("/staff/cards", data=form).status_code == 400  # no CSRF token
    page = client.post("/staff/cards", data={**form, "csrf_token": token}).get_data(as_text=True)
    assert "blocked" in page
    audit = client.get("/staff/audit").get_data(as_text=True)
    assert "reported stolen" in audit and "login" in audit
    assert client.get("/staff/users").status_code == 403


def test_admin_creates_users_and_logout_ends_the_session(client: FlaskClient, runner: FlaskCliRunner) -> None:
    create_user(runner, "boss@qala.kz", "admin")
    token = log_in(client, "boss@qala.kz")
    page = client.post("/staff/users", data={"csrf_token": token, "login": "new@qala.kz", "password": PASSWORD,
                                             "role": "analyst"}).get_data(as_text=True)
    assert "new@qala.kz" in page
    assert client.post("/staff/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/staff/").status_code == 302
    assert client.get("/api/v1/reports/boardings-by-hour").status_code == 401


def test_idle_sessions_expire(client: FlaskClient, runner: FlaskCliRunner, app: Flask) -> None:
    create_user(runner, "ana@qala.kz", "analyst")
    log_in(client, "ana@qala.kz")
    with get_db(app).session() as session:
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        session.execute(update(StaffSession).values(last_seen_at=long_ago))
        session.commit()
    response = client.get("/staff/")
    assert response.status_code == 302 and "session_expired" in response.headers["Location"]


@pytest.mark.parametrize("name", ["boardings-by-route", "boardings-by-stop", "boardings-by-hour", "od-matrix",
                                  "concession-share", "pass-use", "transfers", "revenue-by-product"])
def test_csv_matches_json(client: FlaskClient, runner: FlaskCliRunner, app: Flask, name: str) -> None:
    with get_db(app).session() as session:
        rebuild_dates(session, "qala", insert_boardings(session, DAY_ROWS), RollupSettings(tz=ALMATY))
        session.commit()
    create_user(runner, "ana@qala.kz", "analyst")
    log_in(client, "ana@qala.kz")
    body = client.get(f"/api/v1/reports/{name}?day_type=weekday").get_json()
    assert body["rows"]
    text = client.get(f"/api/v1/reports/{name}?day_type=weekday&format=csv").get_data(as_text=True)
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == body["columns"]

    def cell(value: object) -> str:
        return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    assert table[1:] == [[cell(row[c]) for c in body["columns"]] for row in body["rows"]]


def test_live_map_data_says_when_there_is_no_live_data(client: FlaskClient, runner: FlaskCliRunner,
                                                       app: Flask) -> None:
    from tests.api_feed import add_demo_feed

    add_demo_feed(app)
    create_user(runner, "ana@qala.kz", "analyst")
    assert client.get("/staff/live/vehicles.json").status_code == 302  # staff only
    log_in(client, "ana@qala.kz")
    assert client.get("/staff/live/vehicles.json").get_json()["status"] == "none"
    routes = client.get("/staff/live/routes.json").get_json()["routes"]
    r12 = next(r for r in routes if r["route_id"] == "R12")
    assert r12["name"] == "12" and r12["color"] == "#E4002B" and len(r12["shapes"][0]) >= 2

    # BUS-7 on route 12's shape (the worker publishes a position over 200 m off its trip's shape without the trip)
    write_vehicles(app, [("BUS-7", "T12-a", 43.2394, 76.9510), ("BUS-9", None, 43.2500, 76.9000)])
    live = client.get("/staff/live/vehicles.json").get_json()
    assert live["status"] == "live" and live["age_s"] <= 5
    assert {(v["id"], v["route_id"], v["lat"]) for v in live["vehicles"]} == {
        ("BUS-7", "R12", 43.2394), ("BUS-9", None, 43.25)}

    write_vehicles(app, [("BUS-7", "T12-a", 43.2394, 76.9510)], age_s=600)  # the worker stopped
    assert client.get("/staff/live/vehicles.json").get_json()["status"] == "stale"
