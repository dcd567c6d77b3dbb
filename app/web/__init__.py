"""HTML pages: API docs now; display boards, rider and staff pages later."""

from __future__ import annotations

from flask import Flask

__all__ = ["register_web"]


def register_web(app: Flask) -> None:
    return None
