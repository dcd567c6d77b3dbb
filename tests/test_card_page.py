"""The card page's server side without a browser: the sandbox checkout exists only with the sandbox provider, a
card's passes answer only their owner, and the page carries the fare system's passes and the city's zone."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.api_feed import add_demo_feed
from tests.fixtures.accounts import account
from tests.fixtures.tickets import make_card


def setup_of(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="card-setup">(.*?)</script>', html, re.S)
    assert found
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def test_the_card_page_carries_passes_prices_and_the_feeds_zone(app: Flask, client: FlaskClient) -> None:
    add_demo_feed(app)
    setup = setup_of(client.get("/card?lang=en").get_data(as_text=True))
    assert setup["timezone"] == "Asia/Almaty" and setup["routes"]["R12"] == "12"
    assert setup["passes"]["standard"] == [{"product": "pass_month", "price": 990_000, "days": 30}]
    assert setup["passes"]["student"][0]["price"] == 420_000
    assert setup["prices"]["standard"]["ride"] == 12_000 and "pass_month" not in setup["prices"]["standard"]
    assert setup["provider"] == "sandbox" and setup["top_up"]["min"] == 10_000


def test_the_sandbox_checkout_page_exists_only_with_the_sandbox(app: Flask, client: FlaskClient) -> None:
    rider_id, alice = account(client, "alice@example.kz")
    card_id, _, _ = make_card(app, rider_id=rider_id)
    intent = client.post(f"/api/v1/cards/{card_id}/payment-intents", json={"amount": 50000}, headers=alice)
    page = client.get(intent.get_json()["checkout_url"] + "?lang=ru")
    assert page.status_code == 200
    assert "Тестовый режим (sandbox) — без настоящих денег" in page.get_data(as_text=True)
    assert client.get("/sandbox/checkout/not-an-intent").status_code == 404
    app.config["PAYMENT_PROVIDER"] = "none"
    app.extensions.pop("payments", None)
    assert client.get(intent.get_json()["checkout_url"]).status_code == 404


def test_a_cards_passes_answer_only_its_owner(app: Flask, client: FlaskClient) -> None:
    rider_id, alice = account(client, "alice@example.kz")
    _, bob = account(client, "bob@example.kz")
    card_id, _, _ = make_card(app, balance=1_000_000, rider_id=rider_id)
    assert client.get(f"/rider/cards/{card_id}/passes.json", headers=alice).get_json() == {"passes": []}
    bought = client.post(f"/api/v1/cards/{card_id}/passes", json={"product": "pass_month"}, headers=alice)
    assert bought.status_code == 201
    mine = client.get(f"/rider/cards/{card_id}/passes.json", headers=alice)
    assert mine.headers["Cache-Control"] == "no-store"
    assert [(p["product"], p["price"], p["valid_to"]) for p in mine.get_json()["passes"]] == \
        [("pass_month", 990_000, bought.get_json()["pass"]["valid_to"])]
    assert client.get(f"/rider/cards/{card_id}/passes.json", headers=bob).status_code == 404
    anonymous = client.get(f"/rider/cards/{card_id}/passes.json")
    assert anonymous.status_code == 401 and anonymous.get_json()["error"]["code"] == "missing_token"
