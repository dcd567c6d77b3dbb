"""The card page in real headless Chromium at a phone's width: top-up through the sandbox provider's checkout
(approve and decline), a pass bought from the balance, the history in the city's time with the phone in another
zone, and every error in the page's language; axe-core on the card page and the sandbox checkout.

Set ``QALA_SCREENSHOTS=docs`` to also write ``docs/rider-card-<lang>.png`` and ``docs/rider-card-sandbox-<lang>.png``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select

from app import get_db
from app.instants import as_utc
from app.models import Card, CardPass, IdempotencyRecord, LedgerTransaction, PaymentIntent
from app.ticketing import cards, ledger, riders
from app.ticketing.context import get_ticketing
from tests.api_feed import add_demo_feed
from tests.browser import SHOTS, axe_violations, live_server, needs_axe, needs_chromium
from tests.fixtures.tickets import T0, make_card, make_device, send_tap, tap_request

pytestmark = needs_chromium
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
WAIT_MS = 8000
CITY = ZoneInfo("Asia/Almaty")  # the demo feed's agency zone
LOGIN, PASSWORD = "aigerim@example.kz", "secret-pass"


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    add_demo_feed(app)
    with live_server(app) as url:
        yield url


def new_page(browser: Any, timezone_id: str = "Asia/Almaty") -> Any:
    """A phone-sized page that would read English, under the pages' real Content-Security-Policy."""
    context = browser.new_context(**PHONE, timezone_id=timezone_id, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    return page


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    page = new_page(browser)
    yield page
    page.context.close()


def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


def rider_with_card(app: Flask, balance: int) -> int:
    """A rider account (LOGIN / PASSWORD) owning one card with ``balance`` tiyn; the card's id."""
    return rider_card(app, balance)[0]


def rider_card(app: Flask, balance: int) -> tuple[int, str]:
    """(card id, card number) of the one card, with ``balance`` tiyn, of a new rider account LOGIN / PASSWORD."""
    with get_db(app).session() as session:
        rider_id = riders.create_rider(session, LOGIN, PASSWORD).id
        session.commit()
    card_id, number, _ = make_card(app, balance=balance, rider_id=rider_id)
    return card_id, number


def log_in(page: Any, base: str, lang: str) -> None:
    page.goto(f"{base}/card?lang={lang}")
    page.fill("#login", LOGIN)
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.locator("#my-cards li .balance").wait_for()


def balance_of(app: Flask, card_id: int) -> int:
    with get_db(app).session() as session:
        return ledger.card_account(session, card_id).balance


def read(locator: Any) -> str:
    """The text as shown, with the thin spaces between thousands (1\u202f000 ₸) read as plain ones."""
    return str(locator.inner_text()).replace("\u202f", " ")


def shown_balance(page: Any) -> str:
    return read(page.locator("#my-cards li .balance"))


def status_settles(page: Any) -> str:
    """The account status once it says something final (ok or bad), as shown."""
    page.wait_for_function("() => /\\b(ok|bad)\\b/.test((document.getElementById('account-status') || {}).className)")
    return read(page.locator("#account-status"))


def open_checkout(page: Any, amount_tenge: int | None = None, preset: int | None = None) -> None:
    """Top up the first card by a preset (tiyn) or a typed amount (₸) and land on the provider's checkout."""
    page.click("#my-cards li button[data-action=top_up]")
    if preset is not None:
        page.check(f"input[name=preset][value='{preset}']")
    else:
        page.fill("#custom-amount", str(amount_tenge))
    page.click("#top-up-submit")
    page.wait_for_url("**/sandbox/checkout/pi_*")
    page.locator("#approve:not([disabled])").wait_for()


def test_a_bad_registration_field_is_explained_in_the_pages_language(app: Flask, server: str, phone: Any) -> None:
    phone.goto(server + "/card?lang=ru")
    phone.fill("#login", "aigerim")  # neither an email address nor a phone number: the API refuses it (400, login)
    phone.fill("#password", PASSWORD)
    phone.click("#register")
    phone.wait_for_function("() => document.getElementById('login-error').textContent.length > 0")
    assert phone.locator("#login-error").inner_text() == \
        "Введите адрес электронной почты или номер телефона из 10–15 цифр."
    assert phone.locator("#login").get_attribute("aria-invalid") == "true"
    assert "must be" not in phone.locator("#account").inner_text()  # never the API's English message

    phone.fill("#login", LOGIN)
    phone.fill("#password", "short")  # too short for the API (400, password)
    phone.click("#register")
    phone.wait_for_function("() => document.getElementById('password-error').textContent.length > 0")
    assert phone.locator("#password-error").inner_text() == "Пароль должен содержать не менее 8 символов."
    assert phone.locator("#login").get_attribute("aria-invalid") is None  # the fixed field is no longer marked

    rider_with_card(app, 0)
    phone.fill("#password", PASSWORD)
    phone.click("#register")  # the login exists now (409)
    assert status_settles(phone) == "Аккаунт с таким логином уже существует; войдите в него."
    phone.fill("#password", "wrong-password")
    phone.click("#login-form button[type=submit]")
    phone.wait_for_function("() => document.getElementById('account-status').textContent.includes('пароль')")
    assert phone.locator("#account-status").inner_text() == "Неверный логин или пароль."
    for _ in range(5):  # the login locks after five wrong passwords (QALA_ATTEMPT_FREE_FAILURES): 429
        phone.evaluate("document.getElementById('account-status').className = 'result'")
        phone.click("#login-form button[type=submit]")
        status_settles(phone)
    assert phone.locator("#account-status").inner_text() == "Слишком много попыток; попробуйте позже."


def test_an_empty_field_is_explained_in_kazakh_not_in_the_browsers_language(server: str, phone: Any) -> None:
    phone.goto(server + "/card?lang=kk")
    phone.click("#login-form button[type=submit]")
    assert phone.locator("#login-error").inner_text() == "Бұл өрісті толтырыңыз."
    assert phone.evaluate("document.activeElement.id") == "login"
    phone.fill("#card-number", "9643 1234")
    phone.fill("#card-code", "12")
    phone.click("#balance-form button[type=submit]")
    assert phone.locator("#card-number-error").inner_text() == "Карта нөмірі 19 цифрдан тұрады."
    assert phone.locator("#card-code-error").inner_text() == "Код 3 цифрдан тұрады."


def test_an_approved_top_up_raises_the_balance_by_its_amount(app: Flask, server: str, phone: Any) -> None:
    card_id = rider_with_card(app, 24000)
    log_in(phone, server, "en")
    assert shown_balance(phone) == "240 ₸"
    open_checkout(phone, preset=100_000)
    assert phone.locator("#sandbox-banner strong").inner_text() == "Sandbox — no real money"
    assert read(phone.locator("#checkout-amount")) == "1 000 ₸"
    assert balance_of(app, card_id) == 24000  # nothing is credited before the provider says so

    phone.click("#approve")
    assert status_settles(phone) == "Payment received: 1 000 ₸ added. Balance: 1 240 ₸."
    assert shown_balance(phone) == "1 240 ₸" and balance_of(app, card_id) == 124000
    with get_db(app).session() as session:
        intents = session.scalars(select(PaymentIntent)).all()
        assert [(i.status, i.amount) for i in intents] == [("succeeded", 100_000)]
        assert session.get_one(LedgerTransaction, intents[0].ledger_transaction_id).kind == "top_up"
        # the intent and the checkout's "pay" each went with an Idempotency-Key of its own
        keys = session.execute(select(IdempotencyRecord.key, IdempotencyRecord.status_code)).all()
        assert sorted(code for _, code in keys) == [200, 201] and len({key for key, _ in keys}) == 2
    assert "payment=" not in phone.url  # a reload does not report the payment again


def test_a_declined_top_up_leaves_the_balance_and_says_so(app: Flask, server: str, phone: Any) -> None:
    card_id = rider_with_card(app, 24000)
    log_in(phone, server, "ru")
    phone.click("#my-cards li button[data-action=top_up]")
    phone.fill("#custom-amount", "50")  # below the 100 ₸ a top-up must be
    phone.click("#top-up-submit")
    assert read(phone.locator("#custom-amount-error")) == \
        "Введите сумму в целых тенге: от 100 ₸ до 50 000 ₸."
    phone.fill("#custom-amount", "750")
    assert read(phone.locator("#top-up-submit")) == "Оплатить 750 ₸"
    phone.click("#top-up-submit")
    phone.wait_for_url("**/sandbox/checkout/pi_*")
    phone.locator("#decline:not([disabled])").wait_for()
    assert read(phone.locator("#checkout-amount")) == "750 ₸"
    phone.click("#decline")
    assert status_settles(phone) == "Платёж отклонён: деньги не списаны, баланс не изменился."
    assert shown_balance(phone) == "240 ₸" and balance_of(app, card_id) == 24000
    with get_db(app).session() as session:
        assert [(i.status, i.amount) for i in session.scalars(select(PaymentIntent))] == [("failed", 75_000)]


def test_a_pass_bought_from_the_balance_shows_on_the_card(app: Flask, server: str, phone: Any) -> None:
    card_id = rider_with_card(app, 500_000)  # 5 000 ₸: less than the monthly pass
    log_in(phone, server, "kk")
    phone.click("#my-cards li button[data-action=buy_pass]")
    offer = phone.locator("#pass-offers li").first
    assert offer.locator("strong").inner_text() == "Айлық абонемент"
    assert read(offer.locator(".price")) == "9 900 ₸"
    assert offer.locator(".meta").inner_text().startswith("Сатып алған күннен бастап 30 күн")
    offer.locator("button").click()
    phone.wait_for_function("() => document.getElementById('pass-error').classList.contains('bad')")
    assert phone.locator("#pass-error").inner_text() == "Картада ақша жеткіліксіз; алдымен оны толықтырыңыз."
    assert balance_of(app, card_id) == 500_000

    with get_db(app).session() as session:
        cards.top_up(session, session.get_one(Card, card_id), 600_000, "kiosk")
        session.commit()
    offer.locator("button").click()
    message = status_settles(phone)
    with get_db(app).session() as session:
        bought = session.scalars(select(CardPass).where(CardPass.card_id == card_id)).one()
    assert bought.fare_product_id == "pass_month" and bought.price == 990_000
    assert message.startswith("Абонемент сатып алынды: Айлық абонемент,")
    until = as_utc(bought.valid_to).astimezone(CITY).strftime("%d.%m.%Y")
    assert phone.locator("#my-cards li .pass").inner_text() == f"Айлық абонемент · {until} дейін жарамды"
    assert shown_balance(phone) == "1 100 ₸" and balance_of(app, card_id) == 110_000


def test_history_is_in_the_citys_time_grouped_by_day_with_transfers(app: Flask, server: str, browser: Any) -> None:
    app.config["FARE_PROFILE"] = "astana"  # one free transfer within an hour of the first ride
    card_id, number = rider_card(app, 1_050_000)
    device = make_device(app).device_id
    first_ride = send_tap(app, tap_request(device, 1, number, 0, vehicle="bus-1", route="R12"))
    transfer = send_tap(app, tap_request(device, 2, number, 20 * 60, vehicle="bus-2", route="R92"))
    with get_db(app).session() as session:  # a monthly pass from 09:00 that day
        cards.buy_pass(session, get_ticketing(app), session.get_one(Card, card_id), "pass_month",
                       T0 + dt.timedelta(hours=1))
        session.commit()
    pass_ride = send_tap(app, tap_request(device, 3, number, 5 * 3600, vehicle="bus-3", route="R12"))
    assert (first_ride.fare, transfer.fare, pass_ride.fare) == (10_000, 0, 0)  # 100 ₸, a free transfer, a pass

    page = new_page(browser, timezone_id="America/New_York")  # the phone is on another continent
    try:
        log_in(page, server, "en")
        page.click("#my-cards li button[data-action=history]")
        page.locator("#history-days .day").first.wait_for()
        days = page.locator("#history-days .day")
        ride_day = days.filter(has_text="Route 12")
        first = T0.astimezone(CITY)  # 08:00 in Almaty is 22:00 the evening before in New York
        assert ride_day.locator("h4").inner_text() == f"{first:%A}, {first:%B} {first.day}, {first.year}"
        rides = ride_day.locator("li.entry.ride")
        assert rides.count() == 3
        assert rides.nth(0).locator(".what").inner_text() == "Ride, route 12 ride on a pass"
        later = rides.nth(1)  # newest first
        transfer_at = (T0 + dt.timedelta(minutes=20)).astimezone(CITY)
        assert later.locator("time").inner_text() == transfer_at.strftime("%H:%M")
        assert later.locator(".what").inner_text() == "Ride, route 92 transfer, free"
        assert later.locator(".amount").inner_text() == "0 ₸"
        assert rides.nth(2).locator("time").inner_text() == first.strftime("%H:%M")
        assert rides.nth(2).locator(".amount").inner_text() == "−100 ₸"
        top_up = page.locator("#history-days li.entry.top_up")
        assert read(top_up.locator(".amount")) == "+10 500 ₸"
        sold = page.locator("#history-days li.entry.pass_sale")
        assert sold.locator(".what").inner_text() == "Pass bought · Monthly pass"
        assert read(sold.locator(".amount")) == "−9 900 ₸"
        with get_db(app).session() as session:
            credited = session.scalars(select(LedgerTransaction.created_at)
                                       .where(LedgerTransaction.kind == "top_up")).one()
        local = credited.replace(tzinfo=credited.tzinfo or dt.UTC).astimezone(CITY)
        assert top_up.locator("time").inner_text() == local.strftime("%H:%M")
        assert days.count() == 2  # March's rides and today's top-up and pass, each under its own day
    finally:
        page.context.close()



@needs_axe
def test_card_page_and_sandbox_checkout_are_axe_clean_in_three_languages(app: Flask, server: str,
                                                                         browser: Any) -> None:
    """Logged in, with history and the top-up panel open, and the provider's checkout, at 390 px: kk, ru, en."""
    card_id, number = rider_card(app, 1_500_000)
    device = make_device(app).device_id
    send_tap(app, tap_request(device, 1, number, 0, vehicle="bus-1", route="R12"))
    send_tap(app, tap_request(device, 2, number, 25 * 60, vehicle="bus-2", route="R92"))
    with get_db(app).session() as session:
        cards.buy_pass(session, get_ticketing(app), session.get_one(Card, card_id), "pass_month",
                       dt.datetime.now(dt.UTC))
        session.commit()
    page = new_page(browser)
    try:
        log_in(page, server, "kk")
        for lang in ("kk", "ru", "en"):
            page.goto(f"{server}/card?lang={lang}")
            page.locator("#my-cards li .balance").wait_for()
            page.click("#my-cards li button[data-action=history]")
            page.locator("#history-days .day").first.wait_for()
            assert page.locator("html").get_attribute("lang") == lang
            assert page.locator("#my-cards li .pass").count() == 1
            march = page.locator("#history-days .day h4").last.inner_text()  # 10 March 2026, a Tuesday
            assert march == {"kk": "2026 ж. 10 наурыз, сейсенбі", "ru": "вторник, 10 марта 2026 г.",
                             "en": "Tuesday, March 10, 2026"}[lang]
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            assert axe_violations(page) == [], lang
            shot(page, f"rider-card-{lang}.png")
            page.click("#my-cards li button[data-action=top_up]")
            assert axe_violations(page) == [], lang
            page.click("#top-up-submit")
            page.wait_for_url("**/sandbox/checkout/pi_*")
            page.locator("#approve:not([disabled])").wait_for()
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            assert axe_violations(page) == [], lang
            shot(page, f"rider-card-sandbox-{lang}.png")
    finally:
        page.context.close()
