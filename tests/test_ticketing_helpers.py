"""Only for test modules that still import the ticketing helpers from here (tests/test_ticketing_ledger.py and
tests/test_fastpaths.py, edited by others at the time of the move): they live in tests/fixtures/tickets.py.
Delete this file once nothing imports it (tests/test_isolation.py lists the modules still allowed to)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.fixtures.tickets import T0, ledger_stays_balanced, make_card, make_device, send_tap, signed, tap_request

__all__ = ["T0", "ledger_checked", "make_card", "make_device", "send_tap", "signed", "tap_request"]


@pytest.fixture(autouse=True)
def ledger_checked(app: Flask) -> Iterator[None]:
    """Autouse, as it was here: after every test of a module that imports it, the ledger invariants hold."""
    with ledger_stays_balanced(app):
        yield
