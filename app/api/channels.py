"""Top-ups through kiosks and banks: signed requests of registered channel devices only, each one audited.

A channel device is registered with ``qala devices register NAME --kind kiosk|bank`` and signs its requests like
a validator (``app.ticketing.devices``). The channel a top-up comes from is the device's kind, never the body's.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.cards import body_field
from app.api.device_auth import require_device
from app.api.idempotency import run_mutation
from app.api.spec import endpoint
from app.models import Device
from app.ticketing import cards, payments
from app.ticketing.context import get_ticketing
from app.ticketing.errors import Forbidden

__all__ = ["CHANNEL_KINDS", "bp"]

CHANNEL_KINDS = ("kiosk", "bank")

bp = Blueprint("channels", __name__, url_prefix="/api/v1/channels")
# signed (401), and by a kiosk or bank device (403), before the body is looked at
bp.before_request(require_device(CHANNEL_KINDS))
MIN_CHANNEL_TOP_UP = 100  # tiyn: a kiosk credits whatever cash it counted, down to 1 ₸


def _channel(session: Session, device_id: str) -> str:
    """The channel of an authenticated device: its kind, read afresh (the signature check's kind may be 30 s old)."""
    kind = session.scalar(select(Device.kind).where(Device.id == device_id))
    if kind not in CHANNEL_KINDS:
        raise Forbidden(f"only {' or '.join(CHANNEL_KINDS)} devices may top up cards; this one is a {kind}")
    return str(kind)


@bp.post("/top-ups")
@endpoint("A top-up paid at a kiosk or a bank, sent by that channel's device (signed like a validator request; "
          "only kiosk and bank devices; audited). The Idempotency-Key makes a resent request credit once",
          request="DeviceTopUp", response="DeviceTopUpResult", tag="channels", errors=[401, 403, 404, 409])
def top_up() -> ResponseReturnValue:
    number, amount = body_field("card", str), body_field("amount", int)
    device_id = str(g.device_id)
    ctx = get_ticketing(current_app)

    def work(session: Session) -> tuple[dict[str, Any], int]:
        channel = _channel(session, device_id)
        card = cards.card_by_number(session, ctx, number)
        payments.check_top_up(session, card, amount, minimum=MIN_CHANNEL_TOP_UP)
        balance = cards.channel_top_up(session, card, amount, channel, actor_id=None,
                                       reason=f"{channel} top-up", device_id=device_id)
        return {"masked": card.masked, "amount": amount, "channel": channel, "balance": balance,
                "currency": "KZT"}, 200

    return run_mutation(f"device:{device_id}", work)

