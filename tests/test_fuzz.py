"""Schemathesis over every operation of the OpenAPI document (issue 14): no 500, every status declared, every
body as published — positive and negative cases, signed as validators and channels, logged in as a rider and
as staff. A bounded run; ``bench/fuzz.py`` runs the long campaign."""

from __future__ import annotations

import os

from flask import Flask
from schemathesis import GenerationMode

from tests.fuzzing import APP_CONFIG, FuzzReport, fuzz_operations, fuzz_stateful, load_schema, seed

EXAMPLES = int(os.environ.get("QALA_FUZZ_EXAMPLES", "50"))  # per operation and mode
SCENARIOS, STEPS = 30, 6  # the stateful phase: scenarios following the document's links
ANONYMOUS_EXAMPLES = 5


def test_every_operation_survives_fuzzing(app: Flask) -> None:
    app.config.update(APP_CONFIG)
    credentials = seed(app)
    schema = load_schema(app, credentials)
    operations = {result.ok().label for result in schema.get_all_operations()}
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    published = {f"{method.upper()} {path}" for path, methods in document["paths"].items() for method in methods}
    assert operations == published - {"GET /api/v1/openapi.json"}  # schemathesis leaves its own source out
    assert len(operations) >= 35
    report = fuzz_operations(schema, EXAMPLES, FuzzReport())
    assert report.cases >= len(operations) * 2
    fuzz_stateful(schema, SCENARIOS, STEPS, report)
    credentials.anonymous = True  # unsigned and without a token: the 401s (and what answers without one)
    fuzz_operations(schema, ANONYMOUS_EXAMPLES, report, modes=(GenerationMode.POSITIVE,))
    assert report.failures == [], "\n".join([report.line(), *report.failures])
