"""The API describing itself (OpenAPI, docs page), the one error format, health probes, and responses
that keep to their published schemas."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.api.openapi import openapi_path
from app.api.schemas import EXAMPLES, SCHEMAS
from app.api.spec import endpoint_of
from tests.api_feed import add_demo_feed
from tests.api_schema import schema_errors


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


def test_openapi_has_every_declared_parameter_and_response(app: Flask, openapi: dict[str, Any]) -> None:
    checked = 0
    for rule in app.url_map.iter_rules():
        spec = endpoint_of(app.view_functions[rule.endpoint])
        if spec is None:
            continue
        operation = openapi["paths"][openapi_path(rule)]["get"]
        published = {(p["name"], p["in"]) for p in operation["parameters"]}
        assert published == {(p.name, p.location) for p in spec.params}, rule.rule
        for name in re.findall(r"{(\w+)}", openapi_path(rule)):
            assert (name, "path") in published
        schema_ref = operation["responses"]["200"]["content"][spec.media_type]["schema"]["$ref"]
        assert schema_ref.rsplit("/", 1)[-1] in openapi["components"]["schemas"]
        for status in operation["responses"]:
            if status != "200":
                component = operation["responses"][status]["$ref"].rsplit("/", 1)[-1]
                error_schema = openapi["components"]["responses"][component]["content"]["application/json"]["schema"]
                assert error_schema == {"$ref": "#/components/schemas/Error"}
        checked += 1
    assert checked >= 10


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
