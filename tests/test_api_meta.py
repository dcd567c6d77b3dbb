"""The API describing itself (OpenAPI, docs page), the one error format, health probes, and responses
that keep to their published schemas."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from app import get_db
from app.api.openapi import openapi_path
from app.api.schemas import EXAMPLES, SCHEMAS
from app.api.spec import endpoint_of
from app.models import PaymentIntent
from app.ticketing import riders
from app.ticketing.devices import DeviceCredentials
from app.ticketing.payments import SandboxProvider
from tests.api_feed import add_demo_feed
from tests.api_schema import schema_errors
from tests.fixtures.tickets import make_device, signed


@pytest.fixture
def openapi(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document: dict[str, Any] = response.get_json()
    return document


def test_openapi_document_lists_every_api_rule(app: Flask, openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.1")
    assert openapi["info"]["title"] == "Qala API"
    api_rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1")]
    assert len(api_rules) >= 8
    for rule in api_rules:
        operations = openapi["paths"][openapi_path(rule)]
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert method.lower() in operations, rule.rule


def _methods(rule: Rule) -> list[str]:
    return sorted(m.lower() for m in (rule.methods or set()) - {"HEAD", "OPTIONS"})


def test_openapi_has_every_declared_parameter_body_and_response(app: Flask, openapi: dict[str, Any]) -> None:
    checked = 0
    for rule in app.url_map.iter_rules():
        spec = endpoint_of(app.view_functions[rule.endpoint])
        if spec is None:
            continue
        for method in _methods(rule):
            operation = openapi["paths"][openapi_path(rule)][method]
            published = {(p["name"], p["in"]) for p in operation["parameters"]}
            declared = {(p.name, p.location) for p in spec.params}
            assert declared <= published, rule.rule
            assert published - declared == {(name, "path") for name in rule.arguments
                                             if (name, "path") not in declared}, rule.rule
            for name in re.findall(r"{(\w+)}", openapi_path(rule)):
                assert (name, "path") in published
            success = operation["responses"][str(spec.status)]
            schema_ref = success["content"][spec.media_type]["schema"]["$ref"]
            assert schema_ref.rsplit("/", 1)[-1] in openapi["components"]["schemas"]
            if spec.request is not None:
                body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                assert body == f"#/components/schemas/{spec.request}"
                assert spec.request in openapi["components"]["schemas"]
                assert "400" in operation["responses"]
            others = {str(status) for status, _, _ in spec.other_responses}
            for status in operation["responses"]:
                if status != str(spec.status) and status not in others:
                    component = operation["responses"][status]["$ref"].rsplit("/", 1)[-1]
                    errors = openapi["components"]["responses"][component]["content"]["application/json"]
                    assert errors["schema"] == {"$ref": "#/components/schemas/Error"}
            checked += 1
    assert checked >= 25


TICKETING_BLUEPRINTS = ("validators", "cards", "staff", "payments", "channels")


def test_every_ticketing_post_declares_its_request_body_and_responses(app: Flask, openapi: dict[str, Any]) -> None:
    """(The AVL ingest POSTs take feed payloads and are declared by their own module.)"""
    posts = [r for r in app.url_map.iter_rules() if r.endpoint.split(".", 1)[0] in TICKETING_BLUEPRINTS
             and "POST" in (r.methods or ())]
    assert len(posts) >= 14
    schemas = openapi["components"]["schemas"]
    for rule in posts:
        assert endpoint_of(app.view_functions[rule.endpoint]) is not None, f"{rule.rule} has no @endpoint"
        operation = openapi["paths"][openapi_path(rule)]["post"]
        body_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert operation["requestBody"]["required"] is True
        assert schemas[body_ref.rsplit("/", 1)[-1]]["type"] == "object", rule.rule
        successes = [s for s in operation["responses"] if s.startswith("2")]
        assert len(successes) == 1, rule.rule
        success_ref = operation["responses"][successes[0]]["content"]["application/json"]["schema"]["$ref"]
        assert success_ref.rsplit("/", 1)[-1] in schemas
        assert {"400", "413"} <= set(operation["responses"]), rule.rule
        assert "500" not in operation["responses"], rule.rule  # a 500 is a bug, never a promise


def test_openapi_parameters_carry_bounds_and_defaults(app: Flask, openapi: dict[str, Any]) -> None:
    search = {p["name"]: p for p in openapi["paths"]["/api/v1/stops"]["get"]["parameters"]}
    assert search["radius"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 5000, "default": 500}
    assert search["near"]["schema"]["type"] == "string"
    arrivals = {p["name"]: p for p in openapi["paths"]["/api/v1/stops/{stop_id}/arrivals"]["get"]["parameters"]}
    assert arrivals["window"]["schema"]["default"] == app.config["ARRIVALS_WINDOW_MIN"]
    assert arrivals["at"]["schema"]["format"] == "date-time"
    assert arrivals["stop_id"]["required"] is True


def test_examples_match_their_schemas() -> None:
    for name, example in EXAMPLES.items():
        assert schema_errors(example, SCHEMAS[name], SCHEMAS) == [], name


def test_docs_page_lists_endpoints_params_and_examples(client: FlaskClient, openapi: dict[str, Any]) -> None:
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    for path in openapi["paths"]:
        assert f"<code>{path}</code>" in html
    assert "<code>radius</code>" in html
    assert "Абая — Достык" in html  # an example response, unescaped
    assert "http://" not in html and "https://" not in html  # no CDN or external assets


def test_responses_match_the_published_schemas(app: Flask, client: FlaskClient, openapi: dict[str, Any]) -> None:
    add_demo_feed(app)
    at = "2026-03-10T08:00:00+05:00"
    urls = {
        "/api/v1/stops?q=абай&near=43.239,76.956&radius=3000": "StopList",
        "/api/v1/stops/S1": "Stop",
        "/api/v1/routes": "RouteList",
        "/api/v1/routes/R12": "RouteDetail",
        "/api/v1/stops/S2/departures?date=2026-03-10": "Departures",
        f"/api/v1/stops/S2/arrivals?at={at.replace('+', '%2B')}": "Arrivals",
        "/api/v1/stops/NOPE": "Error",
        "/healthz": "Health",
    }
    schemas = openapi["components"]["schemas"]
    for url, name in urls.items():
        body = client.get(url).get_json()
        assert schema_errors(body, schemas[name], schemas) == [], url


def test_unknown_api_url_and_wrong_method_are_json(client: FlaskClient) -> None:
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.get_json() == {
        "error": {"code": "not_found", "message": "no API endpoint at /api/v1/nothing-here", "field": None}}
    wrong = client.delete("/api/v1/routes")
    assert wrong.status_code == 405
    assert wrong.get_json()["error"]["code"] == "method_not_allowed"
    assert "GET" in wrong.headers["Allow"]
    # outside the API Flask's own pages stay
    assert client.get("/not-api").mimetype == "text/html"


def test_unexpected_errors_are_json_500(app: Flask) -> None:
    def explode() -> str:
        raise RuntimeError("boom")

    app.add_url_rule("/api/v1/test-explode", "test_explode", explode)
    response = app.test_client().get("/api/v1/test-explode")
    assert response.status_code == 500
    error = response.get_json()["error"]
    assert error["code"] == "internal_error"
    assert "boom" not in error["message"]  # internals are logged, not shown


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_checks_database_and_redis(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


def _success_schema(openapi: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    responses = openapi["paths"][path][method]["responses"]
    status = next(s for s in responses if s.startswith("2"))
    schema: dict[str, Any] = responses[status]["content"]["application/json"]["schema"]
    return schema


def test_ticketing_post_responses_match_the_published_schemas(app: Flask, client: FlaskClient,
                                                              openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    checked: set[str] = set()

    def call(method: str, template: str, body: Any, headers: dict[str, str] | None = None,
             device: DeviceCredentials | None = None, **path: Any) -> dict[str, Any]:
        url = template.format(**path)
        if headers is None:  # a signed device request: a validator's unless another device is named
            response = signed(client, device or creds, method.upper(), url, body)
        else:
            response = client.open(url, method=method.upper(), data=json.dumps(body).encode(), headers=headers,
                                   content_type="application/json")
        assert response.status_code < 300, (url, response.get_json())
        payload: dict[str, Any] = response.get_json()
        assert schema_errors(payload, _success_schema(openapi, template, method), schemas) == [], url
        checked.add(f"{method} {template}")
        return payload

    creds = make_device(app)
    call("post", "/api/v1/riders", {"login": "alma@example.kz", "password": "secret-pass"}, {})
    token = call("post", "/api/v1/riders/login", {"login": "alma@example.kz", "password": "secret-pass"}, {})
    rider = {"Authorization": f"Bearer {token['token']}"}
    with get_db(app).session() as session:
        riders.create_rider(session, "desk@qala.kz", "staff-pass-1", role="support")
        session.commit()
    desk_token = call("post", "/api/v1/riders/login", {"login": "desk@qala.kz", "password": "staff-pass-1"}, {})
    desk = {"Authorization": f"Bearer {desk_token['token']}"}
    issued = call("post", "/api/v1/staff/cards", {}, desk)
    spare = call("post", "/api/v1/staff/cards", {"category": "standard"}, desk)
    card = {"card_id": issued["card_id"]}
    call("post", "/api/v1/staff/cards/{card_id}/top-ups", {"amount": 2_000_000, "channel": "kiosk"}, desk, **card)
    call("post", "/api/v1/me/cards", {"card": issued["number"], "code": issued["code"]}, rider)
    intent = call("post", "/api/v1/cards/{card_id}/payment-intents", {"amount": 50000}, rider, **card)
    paid = call("post", "/api/v1/payments/sandbox/intents/{intent_id}/pay", {"outcome": "succeeded"}, rider,
                intent_id=intent["intent_id"])
    assert paid["status"] == "succeeded"
    kiosk = make_device(app, "kiosk at Abay", kind="kiosk")
    call("post", "/api/v1/channels/top-ups", {"card": issued["number"], "amount": 100000}, device=kiosk)
    second = call("post", "/api/v1/cards/{card_id}/payment-intents", {"amount": 10000}, rider, **card)
    with get_db(app).session() as session:
        reference = session.get_one(PaymentIntent, second["intent_id"]).provider_ref
    event = {"event_id": "evt_1", "reference": reference, "status": "failed", "amount": 10000, "currency": "KZT"}
    sandbox = SandboxProvider(app.config["PAYMENT_WEBHOOK_SECRET"])
    call("post", "/api/v1/payments/{provider}/webhook", event, sandbox.sign(json.dumps(event).encode()),
         provider="sandbox")
    call("post", "/api/v1/cards/balance", {"card": issued["number"], "code": issued["code"]}, {})
    at = "2026-03-10T08:00:00+05:00"
    tap = {"seq": 1, "card": issued["number"], "vehicle_id": "bus-1", "route_id": "R12", "tapped_at": at}
    call("post", "/api/v1/validators/taps", tap)
    batch = call("post", "/api/v1/validators/batches", {"taps": [
        {**tap, "vehicle_id": "bus-2"}, {**tap, "seq": 3, "tapped_at": "2026-03-10T09:00:00+05:00"}]})
    assert [r["decision"] for r in batch["results"]] == ["conflict", "accept"] and batch["gaps"] == [[2, 2]]
    call("post", "/api/v1/cards/{card_id}/passes", {"product": "pass_month"}, rider, **card)
    call("post", "/api/v1/staff/cards/{card_id}/adjustments", {"reason": "faulty validator", "amount": 12000,
                                                               "kind": "refund"}, desk, **card)
    call("post", "/api/v1/staff/cards/{card_id}/block", {"reason": "lost"}, desk, **card)
    call("post", "/api/v1/staff/cards/{card_id}/unblock", {"reason": "found"}, desk, **card)
    call("post", "/api/v1/staff/cards/{card_id}/move-balance", {"reason": "replaced",
                                                                "to_card_id": spare["card_id"]}, desk, **card)
    call("post", "/api/v1/riders/logout", {}, rider)  # last: it revokes the rider's token
    posts = {f"post {openapi_path(r)}" for r in app.url_map.iter_rules()
             if r.endpoint.split(".", 1)[0] in TICKETING_BLUEPRINTS and "POST" in (r.methods or ())}
    assert posts == checked


def test_malformed_bodies_are_400_naming_the_field(app: Flask, client: FlaskClient) -> None:
    creds = make_device(app)
    tap = {"seq": 1, "card": "1" * 19, "vehicle_id": "bus-1", "tapped_at": "2026-03-10T08:00:00+05:00"}
    cases: list[tuple[str, Any, str]] = [
        ("/api/v1/validators/taps", {**tap, "seq": "7"}, "seq"),
        ("/api/v1/validators/taps", {**tap, "seq": 0}, "seq"),
        ("/api/v1/validators/taps", {k: v for k, v in tap.items() if k != "vehicle_id"}, "vehicle_id"),
        ("/api/v1/validators/taps", [tap], "body"),
        ("/api/v1/validators/batches", {"taps": []}, "taps"),
        ("/api/v1/validators/batches", {"taps": [tap, {**tap, "seq": 2, "tapped_at": "yesterday"}]},
         "taps[1].tapped_at"),
    ]
    for url, body, field in cases:
        response = signed(client, creds, "POST", url, body)
        assert response.status_code == 400, (url, body)
        error = response.get_json()["error"]
        assert (error["code"], error["field"]) == ("bad_request", field), error
        assert error["message"].startswith(field)
    registered = client.post("/api/v1/riders", json={"login": "x@example.kz", "password": 12345})
    assert registered.status_code == 400 and registered.get_json()["error"]["field"] == "password"
    not_json = client.post("/api/v1/riders/login", data="login=x", content_type="application/x-www-form-urlencoded")
    assert not_json.status_code == 400 and not_json.get_json()["error"]["field"] == "body"
