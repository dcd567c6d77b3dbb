"""Search that forgives: folding and transliteration (unit), ranking and typos on a small index (unit), and the
misspellings riders typed on the Almaty demo feed through the API and the rider home page in Chromium."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app, get_db
from app.errors import BadRequest
from app.schedule.folding import fold_text, fold_word, stem
from app.schedule.importer import import_feed
from app.schedule.search import StopIndex, StopNames, edit_distance
from app.web.colors import badge_style, contrast_ratio
from tests.api_schema import schema_errors
from tests.browser import SHOTS, axe_violations, live_server, needs_axe, needs_chromium
from tests.conftest import DEMO_FEED, FIXED_TAP_DATES, wipe_tables

# --- folding and transliteration -----------------------------------------------------------------------------


@pytest.mark.parametrize("spellings", [
    ("Абай", "Abai", "Abay", "ABAY", "Abaı"),  # Kazakh/Russian Cyrillic, Russian-style, 2018 Kazakh Latin
    ("Достык", "Достық", "Dostyk", "Dostik", "Dostyq", "dostık"),
    ("Абылай", "Abylai", "Abylay", "Abılai"),
    ("Желтоқсан", "Желтоксан", "Zheltoksan", "Jeltoqsan", "Zheltoqsan"),
    ("Әуезов", "Ауэзов", "Auezov", "Áýezov", "Äuezov"),  # ә/á/ä, у/ý, э/е
    ("Байтұрсынұлы", "Baitursynuly", "Baıtursynuly", "Baitūrsynūly"),  # ұ as u, ū (2021)
    ("Шоқан", "Shokan", "Shoqan", "Şoqan"),  # ш as sh / ş (2021)
    ("Ғабит", "Gabit", "Ğabit", "Ǵabit", "Ghabit"),
    ("Өскемен", "Oskemen", "Öskemen", "Óskemen"),
    ("Үшқоңыр", "Ushkonyr", "Úshqońyr", "Üşqoñyr"),  # ү, ң as ń / ñ
    ("Ақжол", "Akzhol", "Aqjol"),  # қ/q/k, ж/zh/j
    ("Һалық", "Halyk", "Khalyk"),  # һ and х/kh
    ("Зелёный", "Зеленый", "ЗЕЛЁНЫЙ", "Zelenyi", "Zelenyy"),
    ("Сейфуллин", "Seifullin", "Seyfullin", "Сейфулин"),  # doubled letters, й as i or y
])
def test_spellings_of_one_word_fold_to_one_key(spellings: tuple[str, ...]) -> None:
    keys = {fold_word(s) for s in spellings}
    assert len(keys) == 1, keys


def test_different_names_stay_apart() -> None:
    keys = [fold_word(w) for w in ("Абай", "Абылай", "Достык", "Жароков", "Саина", "Сайран", "Шевченко")]
    assert len(set(keys)) == len(keys)
    assert fold_word("Sejfullin") != fold_word("Seifullin")  # j is ж in Kazakh Latin: a typo then, not a spelling


def test_case_punctuation_and_dashes_only_separate_words() -> None:
    assert [w.key for w in fold_text("АЛЬ-ФАРАБИ – Назарбаева")] == ["al", "farabi", "nazarbaeva"]
    assert [w.key for w in fold_text("КазНУ им. аль-Фараби")] == ["kaznu", "im", "al", "farabi"]
    assert [w.surface for w in fold_text("Абылай хана, №1003!")] == ["Абылай", "хана", "1003"]
    assert fold_text("— ,.") == [] and fold_text("ь") == []


def test_stems_forgive_inflected_endings_but_not_short_words() -> None:
    assert stem(fold_word("Абая")) == fold_word("Абай")
    assert stem(fold_word("Сейфуллина")) == fold_word("Сейфуллин")
    assert stem(fold_word("Райымбека")) == fold_word("Raiymbek")
    assert stem(fold_word("Абай")) == fold_word("Абай")  # the й of a base form is not an ending
    assert stem(fold_word("хана")) == "hana"  # too short to cut


def test_edit_distance_counts_swaps_as_one_typo() -> None:
    assert edit_distance("abia", "abai", 2) == 1
    assert edit_distance("dostik", "dastik", 2) == 1
    assert edit_distance("farabi", "frabi", 2) == 1
    assert edit_distance("seifulin", "sefiulni", 2) == 2
    assert edit_distance("abai", "jarokov", 2) == 3  # over the limit: limit + 1


# --- ranking on a small index --------------------------------------------------------------------------------


def small_index() -> StopIndex:
    return StopIndex([
        StopNames("exact", ("Сайран",), "2001", popularity=1),
        StopNames("prefix", ("Сайран – Толе би", "Sairan – Tole bi"), "2002", popularity=50),
        StopNames("word", ("Автовокзал Сайран",), "2003", popularity=900),
        StopNames("inside", ("Жетысайрана",), "2004"),
        StopNames("abay-1", ("Абая – Манаса", "Абай – Манас", "Abay – Manas"), "1001", popularity=10),
        StopNames("abay-2", ("Абая – Саина", "Абай – Саин", "Abay – Sain"), "1002", popularity=30),
    ])


def test_ranking_exact_then_prefix_then_word_then_substring() -> None:
    answer = small_index().search("sairan")
    assert answer.stop_ids == ["exact", "prefix", "word", "inside"]  # popularity does not beat a better match
    assert [answer.kinds[i] for i in answer.stop_ids] == ["exact", "prefix", "word", "substring"]
    assert answer.suggestions == []


def test_ties_go_to_the_busier_stop() -> None:
    assert small_index().search("Abai").stop_ids == ["abay-2", "abay-1"]


def test_fuzzy_only_when_nothing_matches_better_with_respelled_suggestions() -> None:
    index = small_index()
    typo = index.search("Abya")
    assert typo.stop_ids == ["abay-2", "abay-1"] and set(typo.kinds.values()) == {"fuzzy"}
    assert typo.suggestions == ["Abay"]  # written as the feed writes it, in the query's (Latin) script
    assert index.search("Абйа").suggestions[0] in {"Абай", "Абая"}  # a Cyrillic typo gets a Cyrillic spelling
    assert index.search("Abya Manas").suggestions == ["Abay Manas"]  # the words that matched stay as typed
    assert index.search(typo.suggestions[0]).kinds == {"abay-2": "prefix", "abay-1": "prefix"}
    assert "fuzzy" not in index.search("Manas").kinds.values()  # Манаса and Manas: no typo neighbours added


def test_numbers_are_never_fuzzy_and_every_word_must_match() -> None:
    index = small_index()
    assert index.search("1002").stop_ids == ["abay-2"]
    assert index.search("1009").stop_ids == []
    assert index.search("Абай Саин").stop_ids == ["abay-2"]
    assert index.search("Абай Сайран").stop_ids == [] and index.search("Абай Сайран").suggestions == []
    with pytest.raises(BadRequest) as raised:
        index.search(" — ")
    assert raised.value.field == "q"


# --- the Almaty demo feed through the API and the home page ---------------------------------------------------


@pytest.fixture(scope="module")
def almaty(database_url: str, redis_settings: dict[str, Any]) -> Iterator[Flask]:
    """The application serving the whole Almaty demo feed, imported once for this module."""
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, **redis_settings, **FIXED_TAP_DATES})
    import_feed(get_db(app), DEMO_FEED, label="almaty", canonical=False)
    yield app
    wipe_tables(app)
    get_db(app).engine.dispose()


def search(client: FlaskClient, q: str, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/stops", query_string={"q": q, **params})
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def names(body: dict[str, Any], language: str = "ru") -> list[str]:
    return [s["translations"].get(language) or s["name"] for s in body["stops"]]


@pytest.mark.parametrize(("q", "word"), [
    ("Abai", "Абая"), ("Abylai", "Абылай"), ("Dostik", "Достык"), ("alfarabi", "Фараби"),
])
def test_latin_spellings_find_the_cyrillic_stops(almaty: Flask, q: str, word: str) -> None:
    body = search(almaty.test_client(), q, limit=100)
    found = names(body)
    assert len(found) >= 5 and all(word.casefold() in n.casefold() for n in found), found
    assert body["stops"][0]["match"] == "prefix" and body["suggestions"] == []
    # the same stops as the Cyrillic query finds
    cyrillic = search(almaty.test_client(), word, limit=100)
    assert {s["stop_id"] for s in body["stops"]} == {s["stop_id"] for s in cyrillic["stops"]}


def test_abai_finds_every_abay_avenue_stop_first_by_name(almaty: Flask) -> None:
    body = search(almaty.test_client(), "Abai", limit=100)
    ids = [s["stop_id"] for s in body["stops"]]
    assert {"abay-nazarbayev", "abay-ablaikhan", "abay-zheltoksan", "abay-seifullin"} <= set(ids)
    assert "Абая – Назарбаева" in names(body)
    # inflected Russian (Абая), Kazakh (Абай) and English (Abay) names all count as prefixes of "abai"
    assert {s["match"] for s in body["stops"]} <= {"prefix", "word"}


def test_a_typo_finds_abay_and_suggests_it(almaty: Flask) -> None:
    client = almaty.test_client()
    body = search(client, "Abya", limit=100)
    assert body["suggestions"] and body["suggestions"][0] == "Abay"
    assert {s["match"] for s in body["stops"]} == {"fuzzy"}
    assert "abay-nazarbayev" in {s["stop_id"] for s in body["stops"]}
    respelled = search(client, body["suggestions"][0], limit=100)
    assert respelled["suggestions"] == [] and respelled["stops"][0]["match"] == "prefix"


def test_yo_and_ye_are_one_letter(almaty: Flask) -> None:
    body = search(almaty.test_client(), "Зеленый базар")
    assert body["stops"][0]["stop_id"] == "dostyk-zhibekzholy"
    assert body["stops"][0]["name"] == "Зелёный базар" and body["stops"][0]["match"] == "exact"


def test_kazakh_latin_and_english_names_of_one_stop(almaty: Flask) -> None:
    client = almaty.test_client()
    ids = {q: [s["stop_id"] for s in search(client, q)["stops"]][:1]
           for q in ("Абылай хана Макатаева", "Abylai khan Makataev", "Abylaı han Maqataev", "абылай макатаев")}
    assert set(map(tuple, ids.values())) == {("ablaikhan-makataev",)}, ids


def test_search_near_a_place_keeps_the_text_matches_only(almaty: Flask) -> None:
    body = search(almaty.test_client(), "Dostik", near="43.2455,76.9564", radius=600)
    assert body["stops"] and all("Достык" in n for n in names(body))
    assert [s["distance_m"] for s in body["stops"]] == sorted(s["distance_m"] for s in body["stops"])
    assert body["stops"][0]["stop_id"] == "dostyk-shevchenko"


def test_every_route_badge_in_the_results_is_legible() -> None:
    """The results list each stop's routes as badges: every demo route's number reaches WCAG AA (4.5:1)."""
    with (DEMO_FEED / "routes.txt").open(encoding="utf-8") as routes:
        styles = [badge_style(r["route_color"], r["route_text_color"]) for r in csv.DictReader(routes)]
    pairs = [re.findall(r"#(\w{6})", style) for style in styles]
    assert len(pairs) >= 12 and min(contrast_ratio(bg, text) for bg, text in pairs) >= 4.5
    assert badge_style("E64A19", "FFFFFF") == "background:#CF4216;color:#FFFFFF"  # route 201: darkened, not 3.9:1


@pytest.mark.parametrize("q", ["Abai", "Abya", "Зеленый базар"])
def test_answers_keep_to_the_published_schema(almaty: Flask, q: str) -> None:
    client = almaty.test_client()
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    body = search(client, q)
    assert body["stops"] and schema_errors(body, schemas["StopList"], schemas) == []


def test_nothing_like_it_is_an_empty_answer_not_an_error(almaty: Flask) -> None:
    assert search(almaty.test_client(), "qwxzv") == {"stops": [], "suggestions": []}


@pytest.mark.parametrize(("lang", "prompt"), [
    ("kk", "Мүмкін, мынаны іздедіңіз:"), ("ru", "Возможно, вы искали:"), ("en", "Did you mean:")])
def test_home_page_without_javascript_offers_the_respelling(almaty: Flask, lang: str, prompt: str) -> None:
    page = almaty.test_client().get("/", query_string={"q": "Abya", "lang": lang}).get_data(as_text=True)
    assert f"{prompt}\n" in page
    assert '<a href="/?q=Abay" data-q="Abay">Abay</a>' in page
    assert "Аль-Фараби" not in page.split('id="stops"')[1].split("</ul>")[0]  # the typo's stops only
    assert 'class="stop-link" href="/stops/abay-nazarbayev"' in page


@needs_chromium
@needs_axe
def test_home_page_suggests_and_follows_a_respelling(almaty: Flask, browser: Any) -> None:
    lang, prompt = "ru", "Возможно, вы искали:"
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(8000)
    try:
        with live_server(almaty) as base:
            page.goto(f"{base}/?lang={lang}")
            page.fill("#q", "Abya")
            page.click("#search button[type=submit]")
            page.wait_for_selector("#did-you-mean a")
            assert page.locator("#did-you-mean").inner_text().startswith(prompt)
            assert page.locator("#did-you-mean a").first.inner_text() == "Abay"
            assert page.locator("#stops li").count() >= 5  # the fuzzy matches are listed under the suggestion
            assert axe_violations(page) == []
            if SHOTS:  # QALA_SCREENSHOTS=docs: docs/rider-search.png
                Path(SHOTS).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(Path(SHOTS) / "rider-search.png"))
            page.locator("#did-you-mean a").first.click()
            page.wait_for_function("() => document.getElementById('did-you-mean').hidden")
            assert page.input_value("#q") == "Abay"
            assert "Абая" in page.locator("#stops li .stop-name").first.inner_text()
            page.fill("#q", "Зеленый базар")
            page.click("#search button[type=submit]")
            page.wait_for_function("() => document.querySelectorAll('#stops li').length === 1")
            assert page.locator("#stops li .stop-name").inner_text() == "Зелёный базар"
            assert axe_violations(page) == []
    finally:
        context.close()
