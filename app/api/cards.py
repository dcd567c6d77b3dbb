"""Rider API: accounts, login, linking cards, balance, history, passes, and the anonymous balance check.

Riders never credit a card here: a top-up is a payment through a provider (``app.api.payments``)."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.idempotency import run_mutation
from app.api.spec import Integer, Param, endpoint
from app.cache import REDIS_UNREACHABLE, key
from app.errors import BadRequest
from app.extensions import get_attempts, get_db, get_redis
from app.instants import rfc3339
from app.models import Card, Rider
from app.reports import access
from app.ticketing import cards, riders
from app.ticketing.attempts import client_subject
from app.ticketing.context import get_ticketing
from app.ticketing.errors import Conflict, TooManyRequests

__all__ = ["body_field", "bp", "current_rider", "rider_scope"]

bp = Blueprint("cards", __name__, url_prefix="/api/v1")

CARD_ID = Param("card_id", Integer(1), "the card's id (from GET /api/v1/me/cards)", location="path", required=True)
BALANCE_CHECKS_PER_MINUTE = 10


def body_field(name: str, kind: type, required: bool = True) -> Any:
    body = request.get_json(silent=True)
    value = body.get(name) if isinstance(body, dict) else None
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadRequest(f"{name} must be a {kind.__name__}", field=name)
    return value


def current_rider(session: Session) -> Rider:
    """The account behind the bearer token, loaded in ``session``. The token is checked once per request (a view
    may ask for the rider in several sessions), in a transaction of its own committed at once, so a staff token's
    idle clock restarts even when the request itself only reads."""
    rider_id = g.get("rider_id")
    if rider_id is None:
        with get_db(current_app).session() as auth:
            rider_id = _bearer(auth).rider.id
            auth.commit()
        g.rider_id = rider_id
    return session.get_one(Rider, rider_id)


def _bearer(session: Session) -> riders.Bearer:
    return riders.read_token(session, current_app.config["SECRET_KEY"], request.headers.get("Authorization"),
                             now=access.utcnow(), staff_policy=access.policy_from_config(current_app.config))


def rider_scope() -> str:
    """The Idempotency-Key scope of the authenticated rider (keys never collide across riders)."""
    with get_db(current_app).session() as session:
        return f"rider:{current_rider(session).id}"


@bp.post("/riders")
@endpoint("Create a rider account (login = email or phone)", request="RiderRegistration",
          response="RiderCreated", status=201, tag="cards", errors=[409])
def register() -> ResponseReturnValue:
    login, password = body_field("login", str), body_field("password", str)
    name = body_field("full_name", str, required=False)

    def work(session: Session) -> tuple[dict[str, Any], int]:
        rider = riders.create_rider(session, login, password, name)
        session.flush()
        return {"rider_id": rider.id, "login": rider.login}, 201

    # no account yet to scope the key by: the login being registered stands in, so two clients' keys never
    # collide (and a replay still needs the same body, password included)
    login_key = hashlib.sha256(riders.normal_login(login).encode()).hexdigest()[:32]
    return run_mutation(f"register:{login_key}", work)


@bp.post("/riders/login")
@endpoint("Exchange login and password for a bearer token; repeated failures lock the login (and the client "
          "address) for a while, doubling", request="Login", response="Token", tag="cards", errors=[401, 429])
def login() -> ResponseReturnValue:
    name, password = body_field("login", str), body_field("password", str)
    attempts = get_attempts(current_app)
    with attempts.guard(attempts.password(name, request.remote_addr)), get_db(current_app).session() as session:
        rider = riders.authenticate(session, name, password)
        staff_session = None
        if access.has_role(rider, "analyst"):  # a staff token lives as long as a staff session of its own
            staff_session = access.open_session(session, rider, access.utcnow(),
                                                access.policy_from_config(current_app.config)).session
        session.commit()
        token = riders.issue_token(current_app.config["SECRET_KEY"], rider,
                                   staff_session.id if staff_session else None)
        return jsonify(token=token, rider_id=rider.id)


@bp.post("/riders/logout")
@endpoint("Revoke every bearer token of my account (log out everywhere); send {}", request="Logout",
          response="LoggedOut", tag="cards", errors=[401])
def logout() -> ResponseReturnValue:
    with get_db(current_app).session() as session:
        riders.log_out(session, _bearer(session))
        session.commit()
    return jsonify(logged_out=True)


@bp.get("/me/cards")
@endpoint("My cards", response="CardList", tag="cards", errors=[401])
def my_cards() -> ResponseReturnValue:
    with get_db(current_app).session() as session:
        rider = current_rider(session)
        owned = session.scalars(select(Card).where(Card.rider_id == rider.id).order_by(Card.id))
        return jsonify(cards=[riders.card_summary(session, c) for c in owned])


@bp.post("/me/cards")
@endpoint("Link a card to my account with its number and printed code; repeated wrong codes lock the card, "
          "my account and the client address for a while, doubling", request="CardCredentials",
          response="Card", tag="cards", errors=[401, 404, 409, 429])
def link_card() -> ResponseReturnValue:
    ctx = get_ticketing(current_app)
    number, code = body_field("card", str), body_field("code", str)
    with get_db(current_app).session() as session:
        rider_id = current_rider(session).id  # authenticated first: codes are only tried by a known account

    def work(session: Session) -> tuple[dict[str, Any], int]:
        rider = current_rider(session)
        card = cards.card_by_number(session, ctx, number, code)
        if card.rider_id not in (None, rider.id):
            raise Conflict("this card is registered to someone else")
        card.rider_id = rider.id
        return riders.card_summary(session, card), 200

    attempts = get_attempts(current_app)
    with attempts.guard(attempts.card_code(number, request.remote_addr, rider_id=rider_id)):
        return run_mutation(f"rider:{rider_id}", work)


@bp.get("/cards/<card_id>")
@endpoint("One of my cards", response="Card", tag="cards", params=[CARD_ID], errors=[401, 404])
def card_detail(card_id: int) -> ResponseReturnValue:
    with get_db(current_app).session() as session:
        return jsonify(riders.card_summary(session, riders.owned_card(session, current_rider(session), card_id)))


@bp.get("/cards/<card_id>/history")
@endpoint("Trips and payments of one of my cards", response="CardHistory", tag="cards",
          params=[CARD_ID, Param("limit", Integer(1, 200), "at most this many of each", default=50)],
          errors=[401, 404])
def card_history(card_id: int, limit: int) -> ResponseReturnValue:
    with get_db(current_app).session() as session:
        card = riders.owned_card(session, current_rider(session), card_id)
        return jsonify(riders.card_history(session, card, limit))


@bp.post("/cards/<int:card_id>/passes")
@endpoint("Buy a monthly pass from the card's balance, valid from now (or `start`)", request="PassPurchase",
          response="CardWithPass", status=201, tag="cards", errors=[401, 404, 409])
def buy_pass(card_id: int) -> ResponseReturnValue:
    ctx = get_ticketing(current_app)
    product = body_field("product", str)
    start_raw = body_field("start", str, required=False)
    try:
        start = dt.datetime.fromisoformat(start_raw).astimezone(dt.UTC) if start_raw else dt.datetime.now(dt.UTC)
    except ValueError:
        raise BadRequest("start must be ISO-8601 with an offset", field="start") from None

    def work(session: Session) -> tuple[dict[str, Any], int]:
        card = riders.owned_card(session, current_rider(session), card_id)
        item = cards.buy_pass(session, ctx, card, product, start)
        return {**riders.card_summary(session, card), "pass": {
            "product": item.fare_product_id, "price": item.price, "valid_from": rfc3339(item.valid_from),
            "valid_to": rfc3339(item.valid_to)}}, 201

    return run_mutation(rider_scope(), work)


@bp.post("/cards/balance")
@endpoint("Balance of any card by its number and printed 3-digit code; repeated wrong codes lock the card and "
          "the client address for a while, doubling, and each address may check a few times a minute",
          request="CardCredentials", response="CardBalance", tag="cards", errors=[404, 429])
def anonymous_balance() -> ResponseReturnValue:
    number, code = body_field("card", str), body_field("code", str)
    _balance_rate_limit()
    attempts = get_attempts(current_app)
    ctx = get_ticketing(current_app)
    with attempts.guard(attempts.card_code(number, request.remote_addr)), get_db(current_app).session() as session:
        card = cards.card_by_number(session, ctx, number, code)
        summary = riders.card_summary(session, card)
        return jsonify({k: summary[k] for k in ("masked", "status", "balance", "currency")})


def _balance_rate_limit() -> None:
    """At most BALANCE_CHECKS_PER_MINUTE checks per client address, right or wrong (it is a lookup service,
    not a way to watch many cards); skipped while Redis is away — the attempt limits still hold then."""
    counter = key("ratelimit", "balance", client_subject(request.remote_addr))
    try:
        redis = get_redis(current_app)
        seen = redis.incr(counter)
        if seen == 1:
            redis.expire(counter, 60)
        wait = redis.ttl(counter) if seen > BALANCE_CHECKS_PER_MINUTE else 0
    except REDIS_UNREACHABLE:
        return
    if seen > BALANCE_CHECKS_PER_MINUTE:
        raise TooManyRequests(f"at most {BALANCE_CHECKS_PER_MINUTE} balance checks a minute",
                              retry_after=max(1, int(wait)))
