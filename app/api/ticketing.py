"""Registers the ticketing blueprints (validators, riders and cards, staff, payments, top-up channels) and their
response schemas."""

from __future__ import annotations

from flask import Flask

__all__ = ["register_ticketing_api"]


def register_ticketing_api(app: Flask) -> None:
    from app.api.cards import bp as cards_bp
    from app.api.channels import bp as channels_bp
    from app.api.payments import bp as payments_bp
    from app.api.staff import bp as staff_bp
    from app.api.ticketing_schemas import install_schemas
    from app.api.validators import bp as validators_bp

    install_schemas()
    for blueprint in (validators_bp, cards_bp, staff_bp, payments_bp, channels_bp):
        app.register_blueprint(blueprint)
