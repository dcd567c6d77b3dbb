"""Rider accounts: login (email or phone) with a password hash, bearer tokens, linking cards, history."""

from __future__ import annotations

import re
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.errors import BadRequest, NotFound
from app.models import Card, LedgerEntry, LedgerTransaction, Rider, Tap
from app.ticketing import ledger
from app.ticketing.errors import Conflict, Forbidden, Unauthorized

__all__ = [
    "authenticate",
    "card_history",
    "card_summary",
    "create_rider",
    "issue_token",
    "owned_card",
    "require_staff",
    "rider_from_token",
]

TOKEN_MAX_AGE_S = 12 * 3600
_LOGIN = re.compile(r"^([^@\s]+@[^@\s]+\.[^@\s]+|\+?[0-9]{10,15})$")


def create_rider(session: Session, login: str, password: str, full_name: str | None = None,
                 role: str = "rider") -> Rider:
    login = login.strip().lower()
    if not _LOGIN.match(login):
        raise BadRequest("login must be an email address or a phone number", field="login")
    if len(password) < 8:
        raise BadRequest("password must have at least 8 characters", field="password")
    rider = Rider(login=login, password_hash=generate_password_hash(password), full_name=full_name, role=role)
    try:
        with session.begin_nested():
            session.add(rider)
    except IntegrityError:
        raise Conflict("this login is taken") from None
    return rider


def authenticate(session: Session, login: str, password: str) -> Rider:
    rider = session.scalar(select(Rider).where(Rider.login == login.strip().lower()))
    if rider is None or not check_password_hash(rider.password_hash, password):
        raise Unauthorized("bad_credentials", "login or password is wrong")
    return rider


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="qala-rider")


def issue_token(secret: str, rider: Rider) -> str:
    return _serializer(secret).dumps({"rider": rider.id})


def rider_from_token(session: Session, secret: str, header: str | None) -> Rider:
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("missing_token", "send Authorization: Bearer <token> (POST /api/v1/riders/login)")
    try:
        data = _serializer(secret).loads(header[7:], max_age=TOKEN_MAX_AGE_S)
    except SignatureExpired:
        raise Unauthorized("expired_token", "the token has expired; log in again") from None
    except BadSignature:
        raise Unauthorized("bad_token", "the token is not valid") from None
    rider = session.get(Rider, int(data["rider"]))
    if rider is None:
        raise Unauthorized("bad_token", "the token's account no longer exists")
    return rider


def owned_card(session: Session, rider: Rider, card_id: int) -> Card:
    """The card, if ``rider`` owns it or is staff; other riders get 404 (never a hint that it exists)."""
    card = session.get(Card, card_id)
    if card is None or (card.rider_id != rider.id and rider.role not in ("support", "admin")):
        raise NotFound("no such card")
    return card


def require_staff(rider: Rider, admin: bool = False) -> None:
    allowed = ("admin",) if admin else ("support", "admin")
    if rider.role not in allowed:
        raise Forbidden("this needs a staff role: " + " or ".join(allowed))


def card_summary(session: Session, card: Card) -> dict[str, Any]:
    return {"card_id": card.id, "masked": card.masked, "status": card.status, "category": card.rider_category,
            "balance": ledger.card_account(session, card.id).balance, "currency": "KZT"}


def card_history(session: Session, card: Card, limit: int = 50) -> dict[str, Any]:
    """Recent taps and payments (ledger postings on the card), newest first."""
    account = ledger.card_account(session, card.id)
    taps = session.scalars(select(Tap).where(Tap.card_id == card.id).order_by(Tap.tapped_at.desc()).limit(limit))
    postings = session.execute(
        select(LedgerTransaction.kind, LedgerTransaction.reason, LedgerTransaction.created_at, LedgerEntry.amount)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .where(LedgerEntry.account_id == account.id).order_by(LedgerEntry.id.desc()).limit(limit))
    return {
        "taps": [{"at": t.tapped_at.isoformat(), "vehicle_id": t.vehicle_id, "route_id": t.route_id,
                  "outcome": t.outcome, "reason": t.reason, "fare": t.fare} for t in taps],
        "payments": [{"kind": kind, "reason": reason, "at": at.isoformat(), "amount": amount}
                     for kind, reason, at, amount in postings],
    }
