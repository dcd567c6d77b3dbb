"""Rider accounts: login (email or phone) with a password hash, bearer tokens, linking cards, history.

A bearer token carries the account's ``token_version``: logging out (or deactivating a staff account) bumps the
version and every token issued before dies. A staff member's token also names the staff session it opened, so
it obeys the staff idle and absolute timeouts and dies with the session (``app.reports.access``).
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.errors import BadRequest, NotFound
from app.instants import rfc3339
from app.models import Card, LedgerEntry, LedgerTransaction, Rider, StaffSession, Tap
from app.ticketing import ledger
from app.ticketing.errors import Conflict, Forbidden, Unauthorized

if TYPE_CHECKING:
    import datetime as dt

    from app.reports.access import SessionPolicy

__all__ = [
    "Bearer",
    "authenticate",
    "card_history",
    "card_summary",
    "create_rider",
    "issue_token",
    "log_out",
    "normal_login",
    "owned_card",
    "password_checks",
    "read_token",
    "require_staff",
    "rider_from_token",
]

TOKEN_MAX_AGE_S = 12 * 3600
_LOGIN = re.compile(r"^([^@\s]+@[^@\s]+\.[^@\s]+|\+?[0-9]{10,15})$")


class _PasswordChecks:
    """Every password check runs one scrypt hash — unknown and deactivated logins included — so the answer
    takes as long whether or not the login exists. ``count`` lets tests see that a hash ran."""

    def __init__(self) -> None:
        self.count = 0
        self._dummy: str | None = None

    def check(self, password_hash: str | None, password: str) -> bool:
        self.count += 1
        if password_hash is None:
            # a real hash of a random password, made with the same method (and so the same cost) as riders' own
            self._dummy = self._dummy or generate_password_hash(secrets.token_urlsafe(16))
            check_password_hash(self._dummy, password)
            return False
        return check_password_hash(password_hash, password)


_PASSWORDS = _PasswordChecks()


def password_checks() -> int:
    """How many password hashes this process has checked (known, unknown and deactivated logins alike)."""
    return _PASSWORDS.count


def normal_login(login: str) -> str:
    return login.strip().lower()


def create_rider(session: Session, login: str, password: str, full_name: str | None = None,
                 role: str = "rider") -> Rider:
    login = normal_login(login)
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
    """The active account with this login and password; ``Unauthorized`` otherwise, after the same work."""
    rider = session.scalar(select(Rider).where(Rider.login == normal_login(login)))
    matches = _PASSWORDS.check(rider.password_hash if rider is not None else None, password)
    if rider is None or not matches or not rider.active:
        raise Unauthorized("bad_credentials", "login or password is wrong")
    return rider


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="qala-rider")


def issue_token(secret: str, rider: Rider, staff_session_id: int | None = None) -> str:
    claims: dict[str, Any] = {"rider": rider.id, "v": rider.token_version}
    if staff_session_id is not None:
        claims["sid"] = staff_session_id
    return _serializer(secret).dumps(claims)


@dataclass(frozen=True)
class Bearer:
    rider: Rider
    staff_session_id: int | None


def read_token(session: Session, secret: str, header: str | None, *, now: dt.datetime | None = None,
               staff_policy: SessionPolicy | None = None) -> Bearer:
    """The account behind ``Authorization: Bearer <token>``: signed, unexpired, of the account's current
    ``token_version``, active; a staff token's session must be live too (its idle clock restarts: commit)."""
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("missing_token", "send Authorization: Bearer <token> (POST /api/v1/riders/login)")
    try:
        # itsdangerous compares signatures with hmac.compare_digest
        data = _serializer(secret).loads(header[7:], max_age=TOKEN_MAX_AGE_S)
    except SignatureExpired:
        raise Unauthorized("expired_token", "the token has expired; log in again") from None
    except BadSignature:
        raise Unauthorized("bad_token", "the token is not valid") from None
    if not isinstance(data, dict) or not isinstance(data.get("rider"), int) or not isinstance(data.get("v"), int):
        raise Unauthorized("bad_token", "the token is not valid; log in again")
    rider = session.get(Rider, data["rider"])
    if rider is None or not rider.active:
        raise Unauthorized("bad_token", "the token's account no longer exists or is deactivated")
    if not hmac.compare_digest(str(data["v"]).encode(), str(rider.token_version).encode()):
        raise Unauthorized("revoked_token", "the token was revoked (logged out); log in again")
    staff_session_id = data.get("sid")
    if rider.role != "rider":
        # imported here: access builds staff logins on this module (authenticate, create_rider)
        from app.reports import access

        if not isinstance(staff_session_id, int):
            raise Unauthorized("bad_token", "a staff token must come from a login; log in again")
        access.resume_token_session(session, rider, staff_session_id, now or access.utcnow(),
                                    staff_policy or access.SessionPolicy())
    return Bearer(rider, staff_session_id if isinstance(staff_session_id, int) else None)


def rider_from_token(session: Session, secret: str, header: str | None, *, now: dt.datetime | None = None,
                     staff_policy: SessionPolicy | None = None) -> Rider:
    return read_token(session, secret, header, now=now, staff_policy=staff_policy).rider


def log_out(session: Session, bearer: Bearer) -> None:
    """Revoke every token of the account (the version they carry is no longer current)."""
    session.execute(update(Rider).where(Rider.id == bearer.rider.id)
                    .values(token_version=Rider.token_version + 1))
    if bearer.staff_session_id is not None:
        session.execute(update(StaffSession).where(StaffSession.id == bearer.staff_session_id)
                        .values(revoked=True))


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
    """Recent taps and payments (ledger postings on the card), newest first. A tap names the fare product it was
    rated by: a ride charged less than that product's price was a transfer (or capped); a pass's product, a pass
    ride."""
    account = ledger.card_account(session, card.id)
    taps = session.scalars(select(Tap).where(Tap.card_id == card.id).order_by(Tap.tapped_at.desc()).limit(limit))
    postings = session.execute(
        select(LedgerTransaction.kind, LedgerTransaction.reason, LedgerTransaction.created_at, LedgerEntry.amount)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .where(LedgerEntry.account_id == account.id).order_by(LedgerEntry.id.desc()).limit(limit))
    return {
        "taps": [{"at": rfc3339(t.tapped_at), "vehicle_id": t.vehicle_id, "route_id": t.route_id,
                  "outcome": t.outcome, "reason": t.reason, "fare": t.fare, "product_id": t.product_id}
                 for t in taps],
        "payments": [{"kind": kind, "reason": reason, "at": rfc3339(at), "amount": amount}
                     for kind, reason, at, amount in postings],
    }
