"""The application's AVL ingest service, created on first use and kept in ``app.extensions["avl"]``."""

from __future__ import annotations

from flask import Flask

from app.avl.ingest import AvlService

__all__ = ["get_avl"]


def get_avl(app: Flask) -> AvlService:
    service = app.extensions.get("avl")
    if service is None:
        service = app.extensions.setdefault("avl", AvlService())
    assert isinstance(service, AvlService)
    return service
