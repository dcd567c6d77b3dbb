"""Schemathesis over every operation of the app's own OpenAPI document, in process (WSGI): the harness shared by
``tests/test_fuzz.py`` (a bounded run in CI) and ``bench/fuzz.py`` (a long campaign).

The app is seeded with the demo feed (``gtfs_data/almaty``), a rider and an admin (each with a card), a validator
and a kiosk; ``Credentials`` then signs every device request (validators, AVL pings, top-up channels) over its
exact bytes, path, query string and Idempotency-Key, and sends a bearer token — the admin's on staff and report
paths, the rider's elsewhere — and signs the sandbox payment provider's webhooks, so generated requests get past
authentication to the code behind it.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky, Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from app import get_db
from app.schedule.importer import import_feed
from app.ticketing import cards, devices, riders
from app.ticketing.context import get_ticketing
from app.ticketing.devices import DeviceCredentials
from app.ticketing.payments import SandboxProvider

__all__ = ["CHECKS", "Credentials", "FuzzReport", "fuzz_operations", "fuzz_settings", "fuzz_stateful", "load_schema",
           "seed"]

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
DEMO_FEED = Path(__file__).resolve().parent.parent / "gtfs_data" / "almaty"
PASSWORD = "fuzz-pass-123"
STAFF_PREFIXES = ("/api/v1/staff/", "/api/v1/reports")
WEBHOOK_PATH = "/api/v1/payments/sandbox/webhook"
# fuzzing settings for the app under test: SSE streams end after their first event instead of lasting minutes
APP_CONFIG = {"REALTIME_SSE_MAX_S": 0, "REALTIME_SSE_HEARTBEAT_S": 0.1}  # a stream ends after its first board


@dataclass
class Credentials:
    """WSGI middleware in front of the app: signs device requests and adds a bearer token (neither while
    ``anonymous``: then every authenticated operation should answer its declared 401)."""

    app: Callable[..., Iterable[bytes]]
    rider_token: str
    staff_token: str
    by_prefix: dict[str, DeviceCredentials]
    webhooks: SandboxProvider  # signs what the sandbox payment provider would send
    anonymous: bool = False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return gunzipped(self._credited, environ, start_response)

    def _credited(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.anonymous:
            return self.app(environ, start_response)
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        creds = next((c for prefix, c in self.by_prefix.items() if path.startswith(prefix)), None)
        if creds is not None:
            body = _body(environ)
            self._add_headers(environ, devices.signing_headers(
                creds, environ.get("REQUEST_METHOD", "GET"), path, body, query=environ.get("QUERY_STRING", ""),
                idempotency_key=environ.get("HTTP_IDEMPOTENCY_KEY")))
        elif path == WEBHOOK_PATH:
            self._add_headers(environ, self.webhooks.sign(_body(environ)))
        token = self.staff_token if path.startswith(STAFF_PREFIXES) else self.rider_token
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        return self.app(environ, start_response)

    @staticmethod
    def _add_headers(environ: dict[str, Any], headers: dict[str, str]) -> None:
        for name, value in headers.items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value


def gunzipped(app: Callable[..., Iterable[bytes]], environ: dict[str, Any],
              start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The app's answer as an HTTP client hands it on: schemathesis sends ``Accept-Encoding: gzip`` but, in process,
    checks the raw bytes, so a gzip body (the app compresses JSON over 1 KB) is decoded here as requests would; a
    body that says gzip and is not fails the fuzzing with an error."""
    captured: dict[str, Any] = {}

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
        captured.update(status=status, headers=headers, exc_info=exc_info)
        return lambda _data: None

    chunks = app(environ, capture)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    headers: list[tuple[str, str]] = captured["headers"]
    if any(k.lower() == "content-encoding" and v == "gzip" for k, v in headers):
        body = gzip.decompress(body)
        headers = [(k, v) for k, v in headers if k.lower() not in ("content-encoding", "content-length")]
        headers.append(("Content-Length", str(len(body))))
    start_response(captured["status"], headers, captured["exc_info"])
    return [body]


def _body(environ: dict[str, Any]) -> bytes:
    """The request body, read and put back for the app to read again."""
    length = environ.get("CONTENT_LENGTH") or "0"
    body: bytes = environ["wsgi.input"].read(int(length)) if length.isdigit() else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def seed(app: Flask) -> Credentials:
    """The demo feed, a rider and an admin with a card each, a device of each kind; the signing middleware."""
    import_feed(get_db(app), DEMO_FEED, label="almaty", canonical=False)
    ctx = get_ticketing(app)
    with get_db(app).session() as session:
        rider = riders.create_rider(session, "fuzz-rider@example.kz", PASSWORD)
        admin = riders.create_rider(session, "fuzz-admin@qala.kz", PASSWORD, role="admin")
        for owner in (rider, admin):
            card, _, _ = cards.issue_card(session, ctx, category="standard", rider_id=owner.id)
            cards.top_up(session, card, 500_000, "kiosk")
        validator = devices.register_device(session, "fuzz validator", ctx.keys)
        kiosk = devices.register_device(session, "fuzz kiosk", ctx.keys, kind="kiosk")
        session.commit()
    client = app.test_client()
    tokens = [client.post("/api/v1/riders/login", json={"login": login, "password": PASSWORD}).get_json()["token"]
              for login in ("fuzz-rider@example.kz", "fuzz-admin@qala.kz")]
    prefixes = {"/api/v1/validators/": validator, "/api/v1/avl/pings": validator, "/api/v1/channels/": kiosk}
    return Credentials(app.wsgi_app, tokens[0], tokens[1], prefixes,
                       SandboxProvider(app.config["PAYMENT_WEBHOOK_SECRET"]))


def load_schema(app: Flask, credentials: Credentials) -> Any:
    """The app's OpenAPI document, with requests going through ``credentials`` in front of the app."""
    app.wsgi_app = credentials  # type: ignore[method-assign]
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@dataclass
class FuzzReport:
    cases: int = 0
    server_errors: int = 0
    schema_violations: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)  # one line per distinct failure
    seen: set[str] = field(default_factory=set, repr=False)  # what makes a failure distinct

    def line(self) -> str:
        return f"cases={self.cases} server_errors={self.server_errors} schema_violations={self.schema_violations}"


def fuzz_settings(examples: int, seed: int | None = None) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, derandomize=seed is None,
                    suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
                    print_blob=False)


def _operations(schema: Any) -> Iterator[Any]:
    for result in schema.get_all_operations():
        yield result.ok()


def fuzz_operations(schema: Any, examples: int, report: FuzzReport, *,
                    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
                    seed: int | None = None, progress: Callable[[str], None] | None = None) -> FuzzReport:
    """Up to ``examples`` cases per operation and mode; every failed check is counted, never raised."""
    started = time.monotonic()
    for operation in _operations(schema):
        for mode in modes:
            strategy = operation.as_strategy(generation_mode=mode)

            @fuzz_settings(examples, seed)
            @given(case=strategy)
            def run(case: Case) -> None:
                _record(case, case.call(), report)

            if seed is not None:
                run = hypothesis_seed(seed)(run)
            with contextlib.suppress(Unsatisfiable):  # e.g. no way to break an operation that takes nothing
                run()
            if progress is not None:
                progress(f"{operation.label} {mode.value}: {report.line()}")
    report.seconds += time.monotonic() - started
    return report


def fuzz_stateful(schema: Any, scenarios: int, steps: int, report: FuzzReport, *,
                  seed: int | None = None) -> FuzzReport:
    """Scenarios of up to ``steps`` calls that follow the document's links (register → log in → my cards, stop
    search → arrivals, card issue → card detail, …), each response checked and counted like a single case."""
    started = time.monotonic()

    class Scenarios(schema.as_state_machine()):  # type: ignore[misc]
        def validate_response(self, response: Any, case: Case, additional_checks: Any = None,
                              **kwargs: Any) -> None:
            _record(case, response, report)

    options = fuzz_settings(scenarios, seed)
    # the app's state moves under the scenarios (cards get blocked, links find other ids), which Hypothesis may
    # notice as generation that "behaved differently": that ends the phase early, with every answer so far counted
    with contextlib.suppress(Flaky):
        Scenarios.run(settings=settings(options, stateful_step_count=steps))
    report.seconds += time.monotonic() - started
    return report


def _record(case: Case, response: Any, report: FuzzReport) -> None:
    report.cases += 1
    if response.status_code >= 500:
        report.server_errors += 1
        _note(report, f"{case.operation.label}: {response.status_code} for {_describe(case)}: "
                            f"{response.text[:300]}")
        return
    try:
        case.validate_response(response, checks=CHECKS)
    except FailureGroup as group:  # every failed check of this case
        report.schema_violations += 1
        problems = " | ".join(f"{type(e).__name__}: {' '.join(str(e).split())[:300]}" for e in group.exceptions)
        _note(report, f"{case.operation.label}: {response.status_code} {problems[:400]} "
                            f"for {_describe(case)}")


def _describe(case: Case) -> str:
    parts = [f"path={case.path_parameters}" if case.path_parameters else "",
             f"query={case.query}" if case.query else "",
             f"body={case.body!r}"[:200] if case.body is not None and case.body is not NOT_SET else ""]
    return " ".join(p for p in parts if p) or "no parameters"


def _note(report: FuzzReport, line: str) -> None:
    key = re.sub(r'"[^"]*"', '""', line.split(" for ", 1)[0])[:200]  # the same problem with other values
    if key not in report.seen:
        report.seen.add(key)
        report.failures.append(line)
