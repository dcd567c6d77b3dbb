"""The card page's server side: what card.js needs that the rider API does not say, and the sandbox's checkout page.

Every action on the card page — top-up, pass purchase, history — goes through the rider API (``/api/v1``) from
``card.js``. The page is rendered with the facts that make those answers readable: the passes the fare system
sells to each rider category with their prices and validity, every fare product's full price (a ride charged
less is a transfer), the routes' short names, the city's time zone (history times are the city's, not the
phone's) and the top-up limits. A card's passes have no API endpoint yet, so the page reads them from one small
JSON answer here, under ``/rider/``, behind the same bearer token.

The sandbox payment provider needs a checkout page a rider can open: ``/sandbox/checkout/<intent_id>``, served
only while the sandbox is the configured provider (404 otherwise), plays the provider with an Approve and a
Decline button over the API's sandbox "pay" endpoint, whose signed webhook credits the card (or not).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask import Blueprint, jsonify, render_template
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.cards import current_rider
from app.api.payments import SANDBOX_PAY_PATH, get_provider
from app.errors import NoActiveFeed
from app.extensions import flask_app, get_db
from app.instants import rfc3339
from app.models import CardPass
from app.schedule import queries
from app.ticketing import riders
from app.ticketing.context import get_ticketing
from app.ticketing.fares import FareProfile
from app.ticketing.payments import BALANCE_CAP, MAX_TOP_UP, MIN_TOP_UP, SandboxProvider
from app.web.i18n import remember_language

__all__ = ["TOP_UP_PRESETS", "bp", "card_page", "card_setup", "card_strings"]

bp = Blueprint("rider_card", __name__)
TOP_UP_PRESETS = (50_000, 100_000, 200_000, 500_000)  # tiyn: 500, 1 000, 2 000 and 5 000 ₸
_INTENT_ID = re.compile(r"^pi_[0-9a-f]{8,40}$")


bp.after_request(remember_language)


def card_page() -> ResponseReturnValue:
    """The card page (``rider.card``): balance check, account, top-up, passes and history."""
    return render_template("rider/card.html", card_setup=card_setup(), card_strings=card_strings())


def card_setup() -> dict[str, Any]:
    """The facts card.js formats the API's answers with (all money in tiyn)."""
    provider = get_provider(flask_app())
    with get_db(flask_app()).session() as session:
        profile = get_ticketing(flask_app()).profiles.get(session)
        zone, routes = _city(session, profile)
    return {"timezone": zone, "routes": routes, "provider": provider.name if provider else None,
            "top_up": {"min": MIN_TOP_UP, "max": MAX_TOP_UP, "cap": BALANCE_CAP, "presets": list(TOP_UP_PRESETS)},
            "passes": _passes(profile), "prices": _prices(profile)}


def _city(session: Session, profile: FareProfile) -> tuple[str, dict[str, str]]:
    """The feed's agency time zone and route short names (the fare profile's zone while no feed is loaded)."""
    try:
        feed = queries.active_feed(session)
    except NoActiveFeed:
        return profile.config.timezone, {}
    names = {r["route_id"]: r["route_short_name"] or r["route_id"] for r in queries.list_routes(session)}
    return feed.agency_timezone, names


def _categories(profile: FareProfile) -> list[str]:
    return list(dict.fromkeys((profile.default_category, *profile.categories)))


def _passes(profile: FareProfile) -> dict[str, list[dict[str, Any]]]:
    """Per rider category, the passes it may buy: product, price (tiyn) and days of validity."""
    offered: dict[str, list[dict[str, Any]]] = {}
    for category in _categories(profile):
        items = [{"product": product, "price": price, "days": days}
                 for product, days in profile.config.pass_days.items()
                 if (price := profile.product_amount(product, category)) is not None]
        offered[category] = items
    return offered


def _prices(profile: FareProfile) -> dict[str, dict[str, int]]:
    """Per rider category, the full price of every product that is not a pass."""
    products = dict.fromkeys(p.product_id for p in profile.products if not profile.is_pass(p.product_id))
    return {category: {product: price for product in products
                       if (price := profile.product_amount(product, category)) is not None}
            for category in _categories(profile)}


def card_strings() -> dict[str, str]:
    """The card page's own words (card.js), in the page's language; the API's English never reaches the rider."""
    return {
        "err_network": _("No connection to the server; try again."),
        "err_attempts": _("Too many attempts; try again later."),
        "err_required": _("Fill in this field."),
        "err_login": _("Enter an email address or a phone number of 10 to 15 digits."),
        "err_password": _("The password must have at least 8 characters."),
        "err_login_taken": _("An account with this login already exists; log in instead."),
        "err_card_number": _("The card number has 19 digits."),
        "err_card_code": _("The code has 3 digits."),
        "err_card_taken": _("This card is linked to another account."),
        "err_session": _("Your session has ended; log in again."),
        "err_amount": _("Enter a whole number of tenge from %(min)s to %(max)s.", min="{min}", max="{max}"),
        "err_cap": _("A card can hold at most %(cap)s; choose a smaller amount.", cap="{cap}"),
        "err_card_inactive": _("This card is blocked; it cannot be topped up or given a pass."),
        "err_payments_off": _("Top-ups in the app are turned off; top up at a kiosk or a bank."),
        "err_insufficient": _("Not enough money on the card; top it up first."),
        "err_product": _("This pass is not sold for this card's rider category."),
        "err_not_found": _("This card or payment was not found."),
        "err_repeated": _("This request was already sent with different details; try again."),
        "top_up": _("Top up"), "buy_pass": _("Buy a pass"), "history": _("Trips and payments"),
        "top_up_title": _("Top up %(card)s", card="{card}"), "pass_title": _("Passes for %(card)s", card="{card}"),
        "history_title": _("Trips and payments · %(card)s", card="{card}"),
        "pay": _("Pay %(amount)s", amount="{amount}"), "buy_for": _("Buy for %(amount)s", amount="{amount}"),
        "paying": _("Opening the payment page…"), "buying": _("Buying…"),
        "paid": _("Payment received: %(amount)s added. Balance: %(balance)s.", amount="{amount}",
                  balance="{balance}"),
        "declined": _("The payment was declined; nothing was charged and the balance is unchanged."),
        "pending": _("Waiting for the payment to be confirmed…"),
        "pass_bought": _("Pass bought: %(name)s, valid until %(until)s.", name="{name}", until="{until}"),
        "pass_valid": _("%(name)s · valid until %(until)s", name="{name}", until="{until}"),
        "pass_days": _("%(days)s days from purchase · unlimited rides on every city bus route", days="{days}"),
        "no_passes": _("No passes are sold for this card."),
        "product_pass_month": _("Monthly pass"),
        "transfer_free": _("transfer, free"), "transfer_discount": _("transfer, discounted"),
        "pass_ride": _("ride on a pass"), "ride_on": _("Ride, route %(route)s", route="{route}"),
        "ride": _("Ride"), "denied_insufficient_balance": _("not enough money"),
        "denied_passback": _("pass used again too soon"), "denied_card": _("card not accepted"),
        "kind_top_up": _("Top-up"), "kind_pass_sale": _("Pass bought"), "kind_fare_adjustment": _("Fare correction"),
        "kind_balance_move": _("Balance moved"), "kind_refund": _("Refund"),
        "sandbox_no_intent": _("There is no payment to approve; start a top-up on the card page."),
        "sandbox_login": _("Log in on the card page first, then start the top-up again."),
        "sandbox_done": _("This payment is already settled."),
    }


@bp.get("/sandbox/checkout/<intent_id>")
def sandbox_checkout(intent_id: str) -> ResponseReturnValue:
    """The sandbox provider's checkout: SANDBOX — no real money; Approve or Decline one pending top-up."""
    if not isinstance(get_provider(flask_app()), SandboxProvider) or not _INTENT_ID.match(intent_id):
        return render_template("rider/not_found.html", message=_("There is no such payment page.")), 404
    return render_template("rider/sandbox_checkout.html", intent_id=intent_id, card_strings=card_strings(),
                           pay_path=SANDBOX_PAY_PATH.format(intent_id=intent_id))


@bp.get("/rider/cards/<int:card_id>/passes.json")
def card_passes(card_id: int) -> ResponseReturnValue:
    """My card's passes that have not ended, earliest first (401/404 in the API's JSON error format)."""
    now = dt.datetime.now(dt.UTC)
    with get_db(flask_app()).session() as session:
        card = riders.owned_card(session, current_rider(session), card_id)
        rows = session.scalars(select(CardPass).where(CardPass.card_id == card.id, CardPass.valid_to > now)
                               .order_by(CardPass.valid_from))
        passes = [{"product": p.fare_product_id, "price": p.price, "valid_from": rfc3339(p.valid_from),
                   "valid_to": rfc3339(p.valid_to)} for p in rows]
    response = jsonify(passes=passes)
    response.headers["Cache-Control"] = "no-store"
    return response
