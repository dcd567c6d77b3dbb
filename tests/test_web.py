"""The home page renders with and without a schedule."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from app import get_db
from app.schedule.importer import import_feed
from tests.feeds import write_feed


def test_home_without_a_feed_says_how_to_load_one(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "qala gtfs import" in response.get_data(as_text=True)


def test_home_with_a_feed_names_it_and_links_the_api(client: FlaskClient, tmp_path: Path) -> None:
    import_feed(get_db(client.application), write_feed(tmp_path / "f"), canonical=False, label="tiny-almaty")
    page = client.get("/").get_data(as_text=True)
    assert "tiny-almaty" in page and "Asia/Almaty" in page
    assert 'href="/api/v1/docs"' in page
    assert client.get("/static/home.js").status_code == 200
