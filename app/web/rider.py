"""Rider pages (kk / ru / en): find a stop by name, on the map or near me; a stop's arrivals; a route's stops and
live vehicles; a card's balance, top-ups, passes and history through the rider API (``app.web.rider_card``).

Pages render their first state on the server (usable without JavaScript) and then refresh themselves from the
public JSON API; the two small JSON answers only the pages need (the network map, a route's placed vehicles)
live here under ``/rider/``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import numpy as np
from flask import Blueprint, Flask, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from app.errors import BadRequest, NoActiveFeed, NotFound
from app.extensions import flask_app, get_db
from app.realtime.serving import arrivals_answer
from app.schedule import queries
from app.schedule.search import stop_search_cache
from app.web import rider_card, rider_data
from app.web.colors import badge_style
from app.web.i18n import current_language, localized_name, remember_language
from app.web.rider_vehicles import network_vehicles, route_vehicles
from app.web.vendor import leaflet_version

__all__ = ["bp", "format_clock", "format_money"]

bp = Blueprint("rider", __name__)
ARRIVALS_SHOWN = 20
CACHE_SIZE = 512


bp.after_request(remember_language)


def format_clock(iso: str | None) -> str:
    """``HH:MM`` of an ISO time already in the agency's zone (the API writes them so)."""
    return iso[11:16] if iso and len(iso) >= 16 else ""


def format_money(tiyn: int) -> str:
    """Tiyn as tenge with a thin space every three digits: 123456 → ``1 234.56``."""
    sign = "−" if tiyn < 0 else ""
    tenge, rest = divmod(abs(tiyn), 100)
    return f"{sign}{tenge:,}".replace(",", "\u202f") + (f".{rest:02d}" if rest else "")


bp.add_app_template_filter(format_clock, "clock")
bp.add_app_template_filter(format_money, "money")


def _missing(message: str) -> ResponseReturnValue:
    return render_template("rider/not_found.html", message=message), 404


def _no_feed() -> ResponseReturnValue:
    return render_template("rider/not_found.html", message=_("No schedule is loaded yet."), no_feed=True), 503


def _cached(session: Session, kind: str, key: str, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``build()`` once per active feed version, kind, key and language: a feed version never changes, and the
    route page's vehicle list is polled every few seconds by every rider looking at it."""
    feed_id = queries.active_feed(session).id
    cache: dict[tuple[int, str, str, str], dict[str, Any]] = flask_app().extensions.setdefault("rider_cache", {})
    slot = (feed_id, kind, key, current_language())
    found = cache.get(slot)
    if found is None:
        found = build()
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        cache[slot] = found
    return found


def _search(q: str) -> dict[str, Any] | None:
    """Server-side results for ``/?q=`` (the page works without JavaScript): ``{"stops", "suggestions"}`` as the
    API answers, each stop with its name in the page's language; ``None`` when there is no query."""
    if len(q.strip()) < 2:
        return None
    app = flask_app()
    with get_db(app).session() as session:
        try:
            found = queries.search_stops(session, stop_search_cache(app.extensions), q=q[:100], near=None,
                                         radius_m=500, limit=20)
        except BadRequest:
            return {"stops": [], "suggestions": []}
    language = current_language()
    stops = [{**stop, "display_name": localized_name(stop, language)} for stop in found["stops"]]
    return {"stops": stops, "suggestions": found["suggestions"]}


@bp.get("/")
def home() -> ResponseReturnValue:
    with get_db(flask_app()).session() as session:
        try:
            feed = queries.active_feed(session)
        except NoActiveFeed:
            feed = None
    search = _search(request.args.get("q", "")) if feed is not None else None
    return render_template("home.html", feed=feed, results=None if search is None else search["stops"],
                           suggestions=[] if search is None else search["suggestions"])


@bp.get("/stops/<stop_id>")
def stop(stop_id: str) -> ResponseReturnValue:
    language = current_language()
    app = flask_app()
    try:
        with get_db(app).session() as session:
            info = rider_data.stop_page(session, stop_id, language)
        answer = arrivals_answer(app, stop_id, at=None, window=app.config["ARRIVALS_WINDOW_MIN"], route=None,
                                 limit=ARRIVALS_SHOWN)
    except NotFound:
        return _missing(_("There is no stop %(id)s.", id=stop_id))
    except NoActiveFeed:
        return _no_feed()
    board = json.loads(answer.body)
    return render_template("rider/stop.html", stop=info, board=board, etag=answer.etag)


@bp.get("/routes")
def routes() -> ResponseReturnValue:
    try:
        with get_db(flask_app()).session() as session:
            items = rider_data.all_routes(session, current_language())
    except NoActiveFeed:
        return _no_feed()
    return render_template("rider/routes.html", routes=items)


@bp.get("/routes/<route_id>")
def route(route_id: str) -> ResponseReturnValue:
    try:
        with get_db(flask_app()).session() as session:
            info = _route_info(session, route_id)
    except NotFound:
        return _missing(_("There is no route %(id)s.", id=route_id))
    except NoActiveFeed:
        return _no_feed()
    live = route_vehicles(flask_app(), info, dt.datetime.now(dt.UTC))
    return render_template("rider/route.html", route=info, live=live, map_data=_route_map(info, live))


def _route_map(info: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """The route page's map: every shape this route's trips follow (thinned as the network map's), its stops and
    its live vehicles, drawn by the same script as the network map."""
    shapes = info.get("shapes") or {}
    lines = [rider_data.thin_line(np.asarray([p[0] for p in c]), np.asarray([p[1] for p in c]))
             for _, c in sorted(shapes.items()) if len(c) >= 2]
    if not lines:
        lines = [d["shape"]["geometry"]["coordinates"] for d in info["directions"] if d.get("shape")]
    stops: dict[str, dict[str, Any]] = {}
    for direction in info["directions"]:
        for s in direction["stops"]:
            stops[s["stop_id"]] = {"stop_id": s["stop_id"], "name": s["display_name"], "lat": s["lat"],
                                   "lon": s["lon"]}
    route = {"route_id": info["route_id"], "short_name": info["route_short_name"] or info["route_id"],
             "color": info["route_color"] or "00838f", "text_color": info.get("route_text_color"),
             "name": info["display_name"], "lines": lines}
    return {"routes": [route], "stops": list(stops.values()), "vehicles": live["vehicles"]}


def street_map() -> dict[str, str]:
    """What a page's map needs to draw streets: the tile URL (empty: none configured), its credit, Leaflet's files."""
    config = flask_app().config
    tiles = config["MAP_TILE_URL"] if config["MAP_TILE_URL"].startswith(("http://", "https://", "/")) else ""
    version = leaflet_version()
    return {"tiles": tiles, "attribution": config["MAP_TILE_ATTRIBUTION"],
            "leaflet_js": url_for("vendor.leaflet", version=version, filename="leaflet.js"),
            "leaflet_css": url_for("vendor.leaflet", version=version, filename="leaflet.css")}


@bp.get("/card")
def card() -> ResponseReturnValue:
    return rider_card.card_page()


def _route_info(session: Session, route_id: str) -> dict[str, Any]:
    return _cached(session, "route", route_id, lambda: rider_data.route_page(session, route_id, current_language()))


@bp.get("/rider/map.json")
def network_map() -> ResponseReturnValue:
    """Route shapes and stops for the home map."""
    with get_db(flask_app()).session() as session:
        data = _cached(session, "map", "", lambda: rider_data.map_data(session, current_language()))
    response = jsonify(data)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/rider/vehicles.json")
def all_vehicles() -> ResponseReturnValue:
    """Every route's live buses for the home map (parked ones left out, as on the route pages)."""
    with get_db(flask_app()).session() as session:
        try:
            answer = network_vehicles(flask_app(), lambda route_id: _route_info(session, route_id),
                                      dt.datetime.now(dt.UTC), current_language())
        except NoActiveFeed:
            answer = {"snapshot_at": None, "vehicles": []}
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/rider/routes/<route_id>/vehicles.json")
def vehicles(route_id: str) -> ResponseReturnValue:
    with get_db(flask_app()).session() as session:
        info = _route_info(session, route_id)
    response = jsonify(route_vehicles(flask_app(), info, dt.datetime.now(dt.UTC)))
    response.headers["Cache-Control"] = "no-cache"
    return response


def page_strings() -> dict[str, str]:
    """UI words the page scripts write themselves, in the page's language."""
    return {
        "live": _("live"), "scheduled": _("scheduled"), "min": _("min"), "now": _("now"),
        "no_buses": _("No buses in the next hour and a half."), "updated": _("Updated"),
        "offline": _("Cannot reach the server; showing the last answer."),
        "no_stops": _("No stops found."), "no_vehicles": _("No live vehicles on this route right now."),
        "did_you_mean": _("Did you mean:"),
        "between": _("between %(a)s and %(b)s", a="{a}", b="{b}"), "at_start": _("at the first stop"),
        "seen": _("seen %(s)s s ago", s="{s}"), "stops_near": _("Stops near you"),
        "geo_denied": _("Location is not available; search by name instead."),
        "geo_unsupported": _("This browser cannot share its location."),
        "locating": _("Finding where you are…"), "distance_m": _("%(m)s m", m="{m}"),
        "open_stop": _("Open stop"), "card_not_found": _("No card with this number and code."),
        "too_many": _("Too many checks; try again in a minute."), "balance": _("Balance"),
        "status_active": _("active"), "status_blocked": _("blocked"), "login_failed": _("Wrong login or password."),
        "no_cards": _("No cards linked to this account yet."), "history": _("Trips and payments"),
        "no_history": _("No trips or payments yet."),
        "error": _("Something went wrong; try again."), "route": _("Route"),
        "registered": _("Account created; you are logged in."), "linked": _("Card linked."),
        "kind_top_up": _("Top-up"), "kind_fare": _("Ride"), "kind_fare_adjustment": _("Fare correction"),
        "kind_pass_sale": _("Monthly pass"), "kind_balance_move": _("Balance moved"),
        "outcome_accepted": _("ride"), "outcome_double_tap": _("repeat tap, not charged"),
        "outcome_denied": _("denied"),
        # the street map and the route page's buses
        "next_stop": _("next: %(stop)s", stop="{stop}"), "minutes": _("%(n)s min", n="{n}"),
        "bus_here": _("bus here"), "approaching": _("approaching"),
        "street_fallback": _("The street map cannot be loaded; showing the schematic map."),
    }


@bp.app_context_processor
def _rider_context() -> dict[str, Any]:
    return {"page_strings": page_strings, "badge_style": badge_style, "street_map": street_map}


def register_rider(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(rider_card.bp)
