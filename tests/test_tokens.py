"""Revocable tokens: logout kills every token of the account, a deactivated staff member loses tokens and
pages at once, staff bearer tokens obey the staff idle timeout; registration keys are scoped per login;
QALA_ENV must be a known value."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select, update

from app import get_db
from app.config import ConfigError, load_config
from app.models import Rider, StaffSession
from tests.fixtures.accounts import PASSWORD, create_user, csrf, log_in


def bearer(client: FlaskClient, login: str, password: str = PASSWORD) -> dict[str, str]:
    answer = client.post("/api/v1/riders/login", json={"login": login, "password": password})
    assert answer.status_code == 200, answer.get_json()
    return {"Authorization": f"Bearer {answer.get_json()['token']}"}


def test_logout_kills_every_token_of_the_account(client: FlaskClient) -> None:
    assert client.post("/api/v1/riders", json={"login": "alice@example.kz", "password": PASSWORD}).status_code == 201
    phone, laptop = bearer(client, "alice@example.kz"), bearer(client, "alice@example.kz")
    assert client.get("/api/v1/me/cards", headers=phone).status_code == 200
    out = client.post("/api/v1/riders/logout", json={}, headers=phone)
    assert out.status_code == 200 and out.get_json() == {"logged_out": True}
    for headers in (phone, laptop):
        refused = client.get("/api/v1/me/cards", headers=headers)
        assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "revoked_token"
    assert client.post("/api/v1/riders/logout", json={}, headers=phone).status_code == 401
    assert client.get("/api/v1/me/cards", headers=bearer(client, "alice@example.kz")).status_code == 200


def test_a_deactivated_staff_member_loses_tokens_and_pages(client: FlaskClient, runner: FlaskCliRunner,
                                                           app: Flask) -> None:
    create_user(runner, "boss@qala.kz", "admin")
    create_user(runner, "sup@qala.kz", "support")
    token = bearer(client, "sup@qala.kz")
    assert client.get("/api/v1/staff/audit", headers=token).status_code == 200
    support_pages = app.test_client()
    log_in(support_pages, "sup@qala.kz")
    assert support_pages.get("/staff/audit").status_code == 200

    admin_csrf = log_in(client, "boss@qala.kz")
    page = client.post("/staff/users/deactivate", data={"csrf_token": admin_csrf, "login": "sup@qala.kz"})
    assert page.status_code == 200 and "deactivated" in page.get_data(as_text=True)

    assert client.get("/api/v1/staff/audit", headers=token).status_code == 401
    assert client.get("/api/v1/reports", headers=token).status_code == 401
    assert support_pages.get("/staff/audit").status_code == 302  # back to the login page
    with get_db(app).session() as session:
        sup = session.scalars(select(Rider).where(Rider.login == "sup@qala.kz")).one()
        assert sup.active is False and sup.token_version == 1
        sessions = session.scalars(select(StaffSession).where(StaffSession.rider_id == sup.id)).all()
        assert sessions and all(s.revoked for s in sessions)
    again = client.post("/api/v1/riders/login", json={"login": "sup@qala.kz", "password": PASSWORD})
    assert again.status_code == 401 and again.get_json()["error"]["code"] == "bad_credentials"
    form = app.test_client()
    login_csrf = csrf(form.get("/staff/login").get_data(as_text=True))
    assert form.post("/staff/login", data={"csrf_token": login_csrf, "login": "sup@qala.kz",
                                           "password": PASSWORD}).status_code == 401


def test_users_deactivate_cli(client: FlaskClient, runner: FlaskCliRunner) -> None:
    create_user(runner, "ana@qala.kz", "analyst")
    token = bearer(client, "ana@qala.kz")
    result = runner.invoke(args=["users", "deactivate", "ANA@qala.kz"])
    assert result.exit_code == 0 and "deactivated" in result.output
    assert client.get("/api/v1/reports", headers=token).status_code == 401
    assert "(deactivated)" in runner.invoke(args=["users", "list"]).output
    missing = runner.invoke(args=["users", "deactivate", "nobody@qala.kz"])
    assert missing.exit_code != 0 and "no staff account" in missing.output


def test_staff_bearer_tokens_obey_the_staff_idle_timeout(client: FlaskClient, runner: FlaskCliRunner,
                                                         app: Flask) -> None:
    app.config["STAFF_IDLE_S"] = 600
    create_user(runner, "sup@qala.kz", "support")
    token = bearer(client, "sup@qala.kz")

    def idle_for(seconds: int) -> None:
        with get_db(app).session() as session:
            session.execute(update(StaffSession).values(
                last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)))
            session.commit()

    idle_for(500)
    assert client.get("/api/v1/staff/audit", headers=token).status_code == 200  # a read restarts the clock
    with get_db(app).session() as session:
        seen = session.scalars(select(StaffSession.last_seen_at)).one()
        assert dt.datetime.now(dt.UTC) - (seen if seen.tzinfo else seen.replace(tzinfo=dt.UTC)) < dt.timedelta(
            seconds=60)
    idle_for(601)
    expired = client.get("/api/v1/staff/audit", headers=token)
    assert expired.status_code == 401 and expired.get_json()["error"]["code"] == "session_expired"
    assert client.get("/api/v1/reports", headers=token).status_code == 401
    assert client.get("/api/v1/staff/audit", headers=bearer(client, "sup@qala.kz")).status_code == 200


def test_staff_logout_through_the_api_ends_the_token_session(client: FlaskClient, runner: FlaskCliRunner,
                                                             app: Flask) -> None:
    create_user(runner, "ana@qala.kz", "analyst")
    token = bearer(client, "ana@qala.kz")
    assert client.post("/api/v1/riders/logout", json={}, headers=token).status_code == 200
    assert client.get("/api/v1/reports", headers=token).status_code == 401
    with get_db(app).session() as session:
        assert session.scalars(select(StaffSession.revoked)).all() == [True]


def test_registration_idempotency_keys_are_scoped_per_login(client: FlaskClient) -> None:
    key = {"Idempotency-Key": "signup-1"}  # two apps that happen to pick the same key
    first = client.post("/api/v1/riders", json={"login": "one@example.kz", "password": PASSWORD}, headers=key)
    second = client.post("/api/v1/riders", json={"login": "two@example.kz", "password": PASSWORD}, headers=key)
    assert first.status_code == second.status_code == 201
    assert first.get_json()["rider_id"] != second.get_json()["rider_id"]
    replay = client.post("/api/v1/riders", json={"login": "one@example.kz", "password": PASSWORD}, headers=key)
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.get_json() == first.get_json()


@pytest.mark.parametrize("name", ["prod", "Production", "staging", "dev"])
def test_an_unknown_qala_env_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match=repr(name)):
        load_config({"QALA_ENV": name, "SECRET_KEY": "s", "CARD_HASH_KEY": "k"})


@pytest.mark.parametrize("name", ["development", "test"])
def test_known_non_production_environments_load(name: str) -> None:
    assert load_config({"QALA_ENV": name})["ENV"] == name
