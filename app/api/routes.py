"""Routes: the list, and one route with its stops per direction and its shape as GeoJSON."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from app.api.spec import Boolean, Param, String, endpoint
from app.extensions import get_db
from app.schedule import patterns, queries

__all__ = ["bp"]

bp = Blueprint("routes", __name__, url_prefix="/api/v1/routes")


@bp.get("")
@endpoint("All routes", response="RouteList", errors=[503],
          description="Routes of the active feed by route_sort_order, then naturally by short name (2 < 12 < 12A).")
def index() -> ResponseReturnValue:
    with get_db(current_app).session() as session:
        return jsonify(routes=queries.list_routes(session))


@bp.get("/<route_id>")
@endpoint(
    "A route with its stops and shape",
    response="RouteDetail",
    description="Per direction_id: the stop pattern most trips follow, in order, and the shape those trips "
                "use as a GeoJSON Feature (LineString of [lon, lat]).",
    params=[
        Param("route_id", String(), "GTFS route_id", location="path", required=True, example="R12"),
        Param("shape", Boolean(), "include each direction's shape", default=True),
    ],
    errors=[404, 503],
)
def detail(route_id: str, shape: bool) -> ResponseReturnValue:
    with get_db(current_app).session() as session:
        return jsonify(patterns.route_detail(session, route_id, with_shape=shape))
