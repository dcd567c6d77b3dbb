"""Staff pages under /staff: login with a server-side session (idle and absolute expiry) and attempt limits,
a CSRF token on every form post, the reports dashboard (analyst), card blocking (support), the audit log
(support) and staff accounts (admin: create, deactivate)."""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.reports import COOKIE
from app.errors import QalaError
from app.extensions import get_attempts, get_db, get_redis
from app.models import AuditLog, Card, Rider
from app.models.reports import STAFF_ROLES
from app.realtime.store import REDIS_ERRORS
from app.reports import access
from app.reports.livemap import live_vehicles, route_lines
from app.reports.queries import REPORTS, SPECIAL
from app.ticketing import cards
from app.ticketing.errors import TooManyRequests, Unauthorized

__all__ = ["bp"]

bp = Blueprint("staff_pages", __name__, url_prefix="/staff")
View = TypeVar("View", bound=Callable[..., ResponseReturnValue])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _policy() -> access.SessionPolicy:
    return access.policy_from_config(current_app.config)


def staff_page(role: str) -> Callable[[View], View]:
    """Resolve the session cookie (login page if none), check the role (403) and, on POST, the CSRF token."""
    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> ResponseReturnValue:
            with get_db(current_app).session() as db:
                try:
                    login = access.resume_session(db, request.cookies.get(COOKIE), _now(), _policy())
                except Unauthorized as exc:
                    return redirect(url_for("staff_pages.login", reason=exc.code, next=request.path))
                if not access.has_role(login.rider, role):
                    abort(403)
                if request.method == "POST" and not hmac.compare_digest(
                        request.form.get("csrf_token", ""), login.session.csrf_token):
                    abort(400, "the form's CSRF token is missing or wrong; reload the page")
                g.staff = login
                response = view(db, **kwargs)
                db.commit()
                return response
        return wrapper  # type: ignore[return-value]
    return decorate


def _render(template: str, **values: Any) -> str:
    login: access.Login = g.staff
    return render_template(template, staff=login.rider, csrf_token=login.session.csrf_token,
                           can=lambda role: access.has_role(login.rider, role), **values)


@bp.get("/login")
def login() -> ResponseReturnValue:
    session.setdefault("login_csrf", secrets.token_urlsafe(24))
    return render_template("staff/login.html", csrf_token=session["login_csrf"], reason=request.args.get("reason"),
                           next=request.args.get("next", ""))


@bp.post("/login")
def login_post() -> ResponseReturnValue:
    expected = session.get("login_csrf", "")
    if not expected or not hmac.compare_digest(request.form.get("csrf_token", ""), expected):
        abort(400, "the form's CSRF token is missing or wrong; reload the page")
    login_name, password = request.form.get("login", ""), request.form.get("password", "")
    attempts = get_attempts(current_app)
    with get_db(current_app).session() as db:
        try:
            with attempts.guard(attempts.password(login_name, request.remote_addr)):
                done = access.start_session(db, login_name, password, _now(), _policy())
        except Unauthorized:
            db.commit()  # the failed attempt stays in the audit log
            return render_template("staff/login.html", csrf_token=expected, reason="bad_credentials",
                                   next=request.form.get("next", "")), 401
        except TooManyRequests as exc:
            page = render_template("staff/login.html", csrf_token=expected, reason="locked",
                                   next=request.form.get("next", ""))
            return page, 429, {"Retry-After": str(exc.retry_after or 1)}
        db.commit()
        token = done.token
    target = request.form.get("next", "")
    response = make_response(redirect(target if target.startswith("/staff") else url_for("staff_pages.dashboard")))
    response.set_cookie(COOKIE, token, httponly=True, samesite="Lax", path="/",
                        secure=current_app.config["SESSION_COOKIE_SECURE"] or request.is_secure)
    return response


@bp.post("/logout")
@staff_page("analyst")
def logout(db: Session) -> ResponseReturnValue:
    access.end_session(db, g.staff)
    response = make_response(redirect(url_for("staff_pages.login")))
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax",
                           secure=current_app.config["SESSION_COOKIE_SECURE"] or request.is_secure)
    return response


@bp.get("/")
@staff_page("analyst")
def dashboard(db: Session) -> ResponseReturnValue:
    titles = {n: r.title for n, r in REPORTS.items()} | {n: spec[0] for n, spec in SPECIAL.items()}
    every = max(1, min(300, request.args.get("live_every", 10, type=int) or 10))
    return _render("staff/dashboard.html", reports=titles, live_every=every)


@bp.get("/live/vehicles.json")
@staff_page("analyst")
def live_vehicles_json(db: Session) -> ResponseReturnValue:
    """The vehicles in the latest GTFS-rt snapshot, with a status the map shows when there are none."""
    try:
        client = get_redis(current_app._get_current_object())  # type: ignore[attr-defined]
    except REDIS_ERRORS:  # a Redis that cannot be reached is "no live data", not a 500
        return jsonify(status="unavailable", feed_timestamp=None, age_s=None, vehicles=[])
    response = jsonify(live_vehicles(client, _now()))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/live/routes.json")
@staff_page("analyst")
def live_routes_json(db: Session) -> ResponseReturnValue:
    """Route lines of the active feed for the live map (they change only with the feed)."""
    response = jsonify(routes=route_lines(db))
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@bp.get("/audit")
@staff_page("support")
def audit(db: Session) -> ResponseReturnValue:
    rows = db.execute(select(AuditLog, Rider.login).outerjoin(Rider, Rider.id == AuditLog.actor_id)
                      .order_by(AuditLog.id.desc()).limit(200)).all()
    return _render("staff/audit.html", rows=rows)


@bp.route("/users", methods=["GET", "POST"])
@staff_page("admin")
def users(db: Session) -> ResponseReturnValue:
    error = None
    if request.method == "POST":
        try:
            with db.begin_nested():
                access.create_staff(db, request.form.get("login", ""), request.form.get("password", ""),
                                    request.form.get("role", ""), actor_id=g.staff.rider.id)
        except QalaError as exc:
            error = exc.message
    return _users_page(db, error)


@bp.post("/users/deactivate")
@staff_page("admin")
def deactivate_user(db: Session) -> ResponseReturnValue:
    """Deactivate a staff account: no more logins, and its sessions and bearer tokens end at once."""
    error = None
    try:
        with db.begin_nested():
            access.deactivate_staff(db, request.form.get("login", ""), actor_id=g.staff.rider.id)
    except QalaError as exc:
        error = exc.message
    return _users_page(db, error)


def _users_page(db: Session, error: str | None) -> str:
    listed = db.scalars(select(Rider).where(Rider.role.in_(STAFF_ROLES)).order_by(Rider.id)).all()
    return _render("staff/users.html", users=listed, roles=STAFF_ROLES, error=error)


@bp.route("/cards", methods=["GET", "POST"])
@staff_page("support")
def card_support(db: Session) -> ResponseReturnValue:
    """Look a card up by id and block or unblock it, with a reason (audited by the card service)."""
    card, error = None, None
    card_id = request.values.get("card_id", type=int)
    if card_id is not None:
        card = db.get(Card, card_id)
        error = None if card else "no such card"
    if request.method == "POST" and card is not None:
        reason = request.form.get("reason", "").strip()
        action = cards.block if request.form.get("action") == "block" else cards.unblock
        try:
            if not reason:
                raise QalaError("a reason is required")
            with db.begin_nested():
                action(db, card, g.staff.rider.id, reason)
        except QalaError as exc:
            error = exc.message
    return _render("staff/cards.html", card=card, error=error)
