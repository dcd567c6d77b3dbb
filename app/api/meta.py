"""The API describing itself: ``/api/v1/openapi.json`` and the human page ``/api/v1/docs``, from one source."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, current_app, jsonify, render_template
from flask.typing import ResponseReturnValue
from markupsafe import Markup, escape

from app.api.openapi import build_openapi
from app.api.schemas import EXAMPLES
from app.api.spec import endpoint

__all__ = ["bp", "docs_endpoints", "inline_code"]

bp = Blueprint("meta", __name__, url_prefix="/api/v1")

_METHOD_ORDER = {"get": 0, "post": 1, "put": 2, "patch": 3, "delete": 4}


@bp.get("/openapi.json")
@endpoint("This API as an OpenAPI 3.1 document", response="OpenAPI", tag="meta")
def openapi() -> ResponseReturnValue:
    return jsonify(build_openapi(current_app))


@bp.get("/docs")
@endpoint("This API as a web page", response="HTML", tag="meta", media_type="text/html")
def docs() -> ResponseReturnValue:
    document = build_openapi(current_app)
    return render_template(
        "api/docs.html",
        info=document["info"],
        description=inline_code(document["info"]["description"]),
        endpoints=docs_endpoints(document),
        error_example=_pretty(EXAMPLES["Error"]),
        schemas=[(name, _pretty(schema)) for name, schema in document["components"]["schemas"].items()],
    )


def docs_endpoints(document: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per operation of ``document``, shaped for the docs template."""
    endpoints = []
    for path, operations in document["paths"].items():
        for method, operation in sorted(operations.items(), key=lambda kv: _METHOD_ORDER.get(kv[0], 9)):
            responses: dict[str, Any] = operation["responses"]
            success = next((s for s in sorted(responses) if s.startswith("2")), "200")
            contents: dict[str, Any] = responses.get(success, {}).get("content", {})
            media = next(iter(contents), "")
            content: dict[str, Any] = contents.get(media, {})
            endpoints.append({
                "id": operation["operationId"],
                "method": method.upper(),
                "path": path,
                "summary": operation.get("summary", ""),
                "description": inline_code(operation.get("description", "")),
                "params": [_param_row(p) for p in operation.get("parameters", [])],
                "response": content.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1],
                "media_type": media,
                "example": _pretty(content["example"]) if "example" in content else None,
                "status": success,
                "errors": [s for s in responses if not s.startswith("2")],
                "try_url": _try_url(method, path, operation.get("parameters", [])),
            })
    return endpoints


def _param_row(parameter: dict[str, Any]) -> dict[str, Any]:
    schema = parameter.get("schema", {})
    return {
        "name": parameter["name"],
        "in": parameter["in"],
        "required": parameter.get("required", False),
        "type": _type_text(schema),
        "default": json.dumps(schema["default"], ensure_ascii=False) if "default" in schema else "",
        "description": inline_code(parameter.get("description", "")),
    }


def _type_text(schema: dict[str, Any]) -> str:
    text = schema.get("format") or str(schema.get("type", "string"))
    if "minimum" in schema or "maximum" in schema:
        text += f" {schema.get('minimum', '…')}–{schema.get('maximum', '…')}"
    if "examples" in schema:
        text += f", e.g. {schema['examples'][0]}"
    return text


def _try_url(method: str, path: str, parameters: list[dict[str, Any]]) -> str | None:
    """A clickable GET URL filled with the declared examples, when every path parameter has one."""
    if method != "get":
        return None
    query = {}
    for parameter in parameters:
        example = parameter.get("example")
        if parameter["in"] == "path":
            if example is None:
                return None
            path = path.replace("{" + parameter["name"] + "}", str(example))
        elif example is not None:
            query[parameter["name"]] = example
    return path + ("?" + urlencode(query) if query else "")


def inline_code(text: str) -> Markup:
    """Escape ``text`` and show its `backticked` words as code, as in the OpenAPI (CommonMark) text."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)
