"""Languages of the rider pages: Kazakh, Russian and English, chosen by ``?lang=``, a cookie or Accept-Language.

UI text comes from Flask-Babel catalogs in ``app/translations`` (the compiled ``.mo`` files are committed, and a
test fails when one is older than its ``.po``); stop and route names come from the feed's own ``translations.txt``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, current_app, request
from flask_babel import Babel, get_locale

__all__ = [
    "COOKIE",
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LANGUAGE_NAMES",
    "TRANSLATIONS_DIR",
    "current_language",
    "init_i18n",
    "language_url",
    "localized_name",
    "remember_language",
    "select_language",
]

LANGUAGES = ("kk", "ru", "en")
LANGUAGE_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}
# Russian is the language every Almaty feed's own names are written in, so it is the safest guess.
DEFAULT_LANGUAGE = "ru"
COOKIE = "qala_lang"
COOKIE_MAX_AGE_S = 365 * 24 * 3600
TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"


def select_language() -> str:
    """``?lang=`` first (a link the rider clicked), then the remembered cookie, then the browser's preference."""
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return str(asked)
    remembered = request.cookies.get(COOKIE)
    if remembered in LANGUAGES:
        return str(remembered)
    return request.accept_languages.best_match(LANGUAGES, default=DEFAULT_LANGUAGE) or DEFAULT_LANGUAGE


def current_language() -> str:
    """The language of this request's page (Flask-Babel caches the selection per request)."""
    locale = get_locale()
    return locale.language if locale is not None else DEFAULT_LANGUAGE


def remember_language(response: Response) -> Response:
    """Keep a language picked with ``?lang=`` for the next pages; pages vary by the inputs of the choice."""
    asked = request.args.get("lang")
    if asked in LANGUAGES and request.cookies.get(COOKIE) != asked:
        response.set_cookie(COOKIE, str(asked), max_age=COOKIE_MAX_AGE_S, samesite="Lax", httponly=True,
                            secure=current_app.config["SESSION_COOKIE_SECURE"] or request.is_secure)
    response.vary.update(("Accept-Language", "Cookie"))
    return response


def localized_name(item: Mapping[str, Any], language: str, *, field: str = "name") -> str:
    """``item[field]`` in ``language`` when the feed translates it, else as the feed writes it."""
    translations = item.get("translations") or {}
    return str(translations.get(language) or item.get(field) or "")


def init_i18n(app: Flask) -> None:
    """Install Flask-Babel with our catalogs and language choice; templates get ``_``, ``language`` and names."""
    Babel(app, locale_selector=select_language, default_translation_directories=str(TRANSLATIONS_DIR))

    @app.context_processor
    def language_context() -> dict[str, Any]:
        return {"language": current_language(), "languages": LANGUAGE_NAMES, "language_url": language_url}


def language_url(language: str) -> str:
    """This page in another language: the same path and query with ``lang`` replaced."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    return request.path + "?" + urlencode([*args, ("lang", language)])
