"""Staff card support (roles ``support`` and ``admin``): issue, block/unblock, move balance, refund/adjust, audit."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.cards import body_field, current_rider
from app.api.idempotency import run_mutation
from app.api.spec import Integer, Param, endpoint
from app.errors import BadRequest, NotFound
from app.extensions import get_db
from app.instants import rfc3339
from app.models import AuditLog, Card, Rider
from app.ticketing import cards, payments, riders
from app.ticketing.context import get_ticketing

__all__ = ["bp"]

bp = Blueprint("staff", __name__, url_prefix="/api/v1/staff")


def _staff(session: Session) -> Rider:
    rider = current_rider(session)
    riders.require_staff(rider)
    return rider


def _staff_scope() -> str:
    with get_db(current_app).session() as session:
        return f"staff:{_staff(session).id}"


def _card(session: Session, card_id: int) -> Card:
    card = session.get(Card, card_id)
    if card is None:
        raise NotFound("no such card")
    return card


def _reason() -> str:
    reason: str = body_field("reason", str)
    if not reason.strip():
        raise BadRequest("a reason is required", field="reason")
    return reason.strip()


@bp.post("/cards")
@endpoint("Issue a new card (number and printed code are shown once); concession cards need a rider_id "
          "(404 naming rider_id when there is no such rider)",
          request="CardIssue", response="IssuedCard", status=201, tag="staff", errors=[401, 403, 404, 409])
def issue() -> ResponseReturnValue:
    ctx = get_ticketing(current_app)
    category = body_field("category", str, required=False) or "standard"
    rider_id = body_field("rider_id", int, required=False)

    def work(session: Session) -> tuple[dict[str, Any], int]:
        staff = _staff(session)
        card, number, code = cards.issue_card(session, ctx, category=category, rider_id=rider_id)
        session.add(AuditLog(actor_id=staff.id, action="issue", card_id=card.id, reason="issued",
                             details={"category": category}))
        return {**riders.card_summary(session, card), "number": number, "code": code}, 201

    return run_mutation(_staff_scope(), work)


def _card_action(card_id: int, action: str) -> ResponseReturnValue:
    reason = _reason()

    def work(session: Session) -> tuple[dict[str, Any], int]:
        staff = _staff(session)
        card = _card(session, card_id)
        (cards.block if action == "block" else cards.unblock)(session, card, staff.id, reason)
        return riders.card_summary(session, card), 200

    return run_mutation(_staff_scope(), work)


@bp.post("/cards/<int:card_id>/block")
@endpoint("Block a card (lost or stolen): denied at every validator via the deny list", request="StaffReason",
          response="Card", tag="staff", errors=[401, 403, 404, 409])
def block(card_id: int) -> ResponseReturnValue:
    return _card_action(card_id, "block")


@bp.post("/cards/<int:card_id>/unblock")
@endpoint("Unblock a card", request="StaffReason", response="Card", tag="staff", errors=[401, 403, 404, 409])
def unblock(card_id: int) -> ResponseReturnValue:
    return _card_action(card_id, "unblock")


@bp.post("/cards/<int:card_id>/move-balance")
@endpoint("Move the whole balance to another card; this card becomes replaced", request="BalanceMove",
          response="BalanceMoved", tag="staff", errors=[401, 403, 404, 409])
def move_balance(card_id: int) -> ResponseReturnValue:
    reason, target = _reason(), body_field("to_card_id", int)

    def work(session: Session) -> tuple[dict[str, Any], int]:
        staff = _staff(session)
        moved = cards.move_balance(session, _card(session, card_id), _card(session, target), staff.id, reason)
        return {"moved": moved, "from": riders.card_summary(session, _card(session, card_id)),
                "to": riders.card_summary(session, _card(session, target))}, 200

    return run_mutation(_staff_scope(), work)


@bp.post("/cards/<int:card_id>/adjustments")
@endpoint("A refund (kind=refund, amount > 0) or adjustment (either sign) in tiyn, with a reason; audited",
          request="AdjustmentRequest", response="Card", tag="staff", errors=[401, 403, 404, 409])
def adjust(card_id: int) -> ResponseReturnValue:
    reason, amount = _reason(), body_field("amount", int)
    kind = body_field("kind", str, required=False) or "adjustment"
    if kind not in ("refund", "adjustment") or (kind == "refund" and amount <= 0):
        raise BadRequest("kind is refund (amount > 0) or adjustment", field="kind")

    def work(session: Session) -> tuple[dict[str, Any], int]:
        staff = _staff(session)
        card = _card(session, card_id)
        cards.adjust(session, card, amount, staff.id, reason, kind)
        return riders.card_summary(session, card), 200

    return run_mutation(_staff_scope(), work)


@bp.post("/cards/<int:card_id>/top-ups")
@endpoint("A top-up received through a kiosk or bank channel (amount in tiyn), entered by staff; audited",
          request="ChannelTopUp", response="Card", tag="staff", errors=[401, 403, 404, 409])
def top_up(card_id: int) -> ResponseReturnValue:
    amount, channel = body_field("amount", int), body_field("channel", str)
    reason = (body_field("reason", str, required=False) or "").strip() or f"{channel} top-up entered by staff"

    def work(session: Session) -> tuple[dict[str, Any], int]:
        staff = _staff(session)
        card = _card(session, card_id)
        payments.check_top_up(session, card, amount, minimum=1)
        cards.channel_top_up(session, card, amount, channel, actor_id=staff.id, reason=reason)
        return riders.card_summary(session, card), 200

    return run_mutation(_staff_scope(), work)


@bp.get("/audit")
@endpoint("Staff audit log, newest first", response="AuditLog", tag="staff",
          params=[Param("card_id", Integer(1), "only this card"),
                  Param("limit", Integer(1, 500), "at most this many entries", default=100)],
          errors=[401, 403])
def audit(card_id: int | None, limit: int) -> ResponseReturnValue:
    with get_db(current_app).session() as session:
        _staff(session)
        stmt = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
        if card_id is not None:
            stmt = stmt.where(AuditLog.card_id == card_id)
        return jsonify(entries=[{"id": e.id, "actor_id": e.actor_id, "action": e.action, "card_id": e.card_id,
                                 "reason": e.reason, "details": e.details, "at": rfc3339(e.created_at)}
                                for e in session.scalars(stmt)])
