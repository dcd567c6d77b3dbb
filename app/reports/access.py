"""Staff accounts and logins: roles ranked analyst < support < admin, server-side sessions that expire
(idle and absolute), a CSRF token per session, and every login, logout and refusal in the audit log.

Staff are rows of ``riders`` with a staff role, so the API's bearer tokens work for them too; the web
pages use a session cookie holding a random token whose SHA-256 is all that is stored. A staff bearer token is
tied to a session of its own (opened at login, named in the token), so the idle and absolute timeouts, logout
and deactivation hold for tokens exactly as for cookies — in the database, where they survive Redis restarts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.errors import BadRequest, NotFound
from app.models import AuditLog, Rider, StaffSession
from app.models.reports import STAFF_ROLES
from app.ticketing import riders
from app.ticketing.errors import Forbidden, Unauthorized

__all__ = [
    "STAFF_ROLES",
    "Login",
    "SessionPolicy",
    "audit",
    "create_staff",
    "deactivate_staff",
    "end_session",
    "has_role",
    "open_session",
    "policy_from_config",
    "require_role",
    "resume_session",
    "resume_token_session",
    "start_session",
    "utcnow",
]

_RANK = {"rider": 0, "analyst": 1, "support": 2, "admin": 3}
# the idle clock is restarted at most this often: a busy API client does not write its session row per request
# (the idle limit is then honoured to within this much)
TOUCH_EVERY = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class SessionPolicy:
    idle: dt.timedelta = dt.timedelta(minutes=30)
    absolute: dt.timedelta = dt.timedelta(hours=12)


def policy_from_config(config: Mapping[str, Any]) -> SessionPolicy:
    """The application's policy: ``STAFF_IDLE_S`` and ``STAFF_MAX_AGE_S`` seconds."""
    return SessionPolicy(idle=dt.timedelta(seconds=config["STAFF_IDLE_S"]),
                         absolute=dt.timedelta(seconds=config["STAFF_MAX_AGE_S"]))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Login:
    token: str  # goes into the cookie; never stored
    session: StaffSession
    rider: Rider


def has_role(rider: Rider, role: str) -> bool:
    return _RANK.get(rider.role, 0) >= _RANK[role]


def require_role(rider: Rider, role: str) -> None:
    if not has_role(rider, role):
        raise Forbidden(f"this needs the {role} role or higher")


def audit(session: Session, actor_id: int | None, action: str, reason: str | None = None, **details: Any) -> None:
    session.add(AuditLog(actor_id=actor_id, action=action, reason=reason, details=details))


def create_staff(session: Session, login: str, password: str, role: str, actor_id: int | None = None,
                 full_name: str | None = None) -> Rider:
    if role not in STAFF_ROLES:
        raise BadRequest(f"role must be one of {', '.join(STAFF_ROLES)}", field="role")
    rider = riders.create_rider(session, login, password, full_name=full_name, role=role)
    session.flush()
    audit(session, actor_id, "user_create", None, login=rider.login, role=role, user_id=rider.id)
    return rider


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, login: str, password: str, now: dt.datetime, policy: SessionPolicy) -> Login:
    """Check the password and open a session; non-staff accounts are refused like a wrong password."""
    try:
        rider = riders.authenticate(session, login, password)
    except Unauthorized:
        audit(session, None, "login_failed", "bad credentials", login=riders.normal_login(login)[:255])
        raise
    if not has_role(rider, "analyst"):
        audit(session, rider.id, "login_failed", "not a staff account")
        raise Unauthorized("bad_credentials", "login or password is wrong")
    audit(session, rider.id, "login")
    return open_session(session, rider, now, policy)


def open_session(session: Session, rider: Rider, now: dt.datetime, policy: SessionPolicy) -> Login:
    """A new session for an authenticated staff member (a cookie's, or the one a bearer token names)."""
    token = secrets.token_urlsafe(32)
    staff_session = StaffSession(token_hash=_hash(token), rider_id=rider.id, csrf_token=secrets.token_urlsafe(32),
                                 created_at=now, last_seen_at=now, expires_at=now + policy.absolute)
    session.add(staff_session)
    session.flush()
    return Login(token, staff_session, rider)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _live(session: Session, found: StaffSession | None, now: dt.datetime, policy: SessionPolicy) -> Rider:
    """The staff member of a session that is neither revoked nor expired (its idle clock restarted)."""
    if found is None or found.revoked:
        raise Unauthorized("no_session", "log in first")
    if now >= _aware(found.expires_at) or now - _aware(found.last_seen_at) >= policy.idle:
        raise Unauthorized("session_expired", "your session has expired; log in again")
    rider = session.get_one(Rider, found.rider_id)
    if not rider.active or not has_role(rider, "analyst"):
        raise Unauthorized("no_session", "log in first")
    if now - _aware(found.last_seen_at) >= TOUCH_EVERY:
        found.last_seen_at = now
    return rider


def resume_session(session: Session, token: str | None, now: dt.datetime, policy: SessionPolicy) -> Login:
    """The live session of this cookie token (its idle clock restarted), else ``Unauthorized``."""
    if not token:
        raise Unauthorized("no_session", "log in first")
    found = session.scalar(select(StaffSession).where(StaffSession.token_hash == _hash(token)))
    rider = _live(session, found, now, policy)
    assert found is not None  # _live refused a missing session
    return Login(token, found, rider)


def resume_token_session(session: Session, rider: Rider, session_id: int, now: dt.datetime,
                         policy: SessionPolicy) -> StaffSession:
    """The live session a staff bearer token names (its idle clock restarted: the caller commits)."""
    found = session.get(StaffSession, session_id)
    if found is not None and found.rider_id != rider.id:
        found = None
    _live(session, found, now, policy)
    assert found is not None  # _live refused a missing session
    return found


def end_session(session: Session, login: Login) -> None:
    session.execute(update(StaffSession).where(StaffSession.id == login.session.id).values(revoked=True))
    audit(session, login.rider.id, "logout")


def deactivate_staff(session: Session, login: str, actor_id: int | None = None) -> Rider:
    """Deactivate a staff account: it can no longer log in, and its bearer tokens and sessions die now."""
    rider = session.scalar(select(Rider).where(Rider.login == riders.normal_login(login),
                                               Rider.role.in_(STAFF_ROLES)))
    if rider is None:
        raise NotFound("no staff account with this login")
    if actor_id == rider.id:
        raise BadRequest("you cannot deactivate your own account", field="login")
    rider.active = False
    rider.token_version += 1
    session.execute(update(StaffSession).where(StaffSession.rider_id == rider.id, StaffSession.revoked.is_(False))
                    .values(revoked=True))
    audit(session, actor_id, "user_deactivate", None, login=rider.login, user_id=rider.id)
    session.flush()
    return rider
