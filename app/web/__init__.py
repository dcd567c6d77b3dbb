"""HTML pages: the home page (find a stop, see its next buses); boards and staff pages come later."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from app import get_db
from app.models import FeedVersion

__all__ = ["bp", "register_web"]

bp = Blueprint("web", __name__)


@bp.get("/")
def home() -> ResponseReturnValue:
    with get_db(current_app).session() as session:
        feed = session.scalars(select(FeedVersion).where(FeedVersion.is_active.is_(True))).one_or_none()
    return render_template("home.html", feed=feed)


def register_web(app: Flask) -> None:
    from app.web.display import bp as display_bp

    app.register_blueprint(bp)
    app.register_blueprint(display_bp)
    from app.web.staff import bp as staff_bp

    app.register_blueprint(staff_bp)
