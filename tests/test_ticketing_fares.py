"""The pure fare engine: Almaty 2024 and Astana profiles, tap rules, caps, time-of-day prices, order independence."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from app.ticketing.fares import (
    FareProduct,
    FareProfile,
    LegRule,
    PassIn,
    RatedTap,
    TapIn,
    TimeframeRow,
    rate,
    rating_window,
)
from app.ticketing.profiles import DEFAULT_RULES, build_profile

ALMATY = build_profile("almaty_2024")
ASTANA = build_profile("astana")
T0 = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)  # 08:00 in Almaty


def tap(n: int, seconds: float, vehicle: str = "bus-1", route: str | None = "R12") -> TapIn:
    return TapIn(f"t{n:03d}", T0 + dt.timedelta(seconds=seconds), vehicle, route)


def fares_of(result: list[RatedTap]) -> list[int]:
    return [r.fare for r in result]


def test_almaty_prices_by_rider_category() -> None:
    expected = {"standard": 12000, "student": 6000, "school": 6000, "pensioner": 6000, "large_family": 6000,
                "veteran": 0, "pensioner_75": 0, "disability": 0, "unknown_category": 12000}
    for category, amount in expected.items():
        assert fares_of(rate(ALMATY, category, [tap(1, 0)])) == [amount], category


def test_almaty_changing_buses_pays_both_legs() -> None:
    result = rate(ALMATY, "standard", [tap(1, 0, "bus-1"), tap(2, 600, "bus-2")])
    assert fares_of(result) == [12000, 12000]


def test_astana_one_free_transfer_within_60_minutes_of_first_validation() -> None:
    taps = [tap(1, 0, "a"), tap(2, 1200, "b"), tap(3, 2400, "c"), tap(4, 4000, "d"), tap(5, 4100, "e")]
    result = rate(ASTANA, "standard", taps)
    # the third ride starts a new journey (one transfer per journey), so the fourth is its free transfer
    assert fares_of(result) == [10000, 0, 10000, 0, 10000]
    assert [r.transfer for r in result] == [False, True, False, True, False]


def test_astana_transfer_window_counts_from_the_first_tap() -> None:
    assert fares_of(rate(ASTANA, "standard", [tap(1, 0, "a"), tap(2, 3601, "b")])) == [10000, 10000]
    assert fares_of(rate(ASTANA, "student", [tap(1, 0, "a"), tap(2, 3599, "b")])) == [5000, 0]


def test_double_tap_on_the_same_vehicle_within_two_seconds_is_free() -> None:
    result = rate(ALMATY, "standard", [tap(1, 0), tap(2, 1.5), tap(3, 2.0), tap(4, 2.5)])
    assert [r.outcome for r in result] == ["accepted", "double_tap", "double_tap", "accepted"]
    assert fares_of(result) == [12000, 0, 0, 12000]
    # another vehicle is never a double tap
    assert fares_of(rate(ALMATY, "standard", [tap(1, 0, "a"), tap(2, 1, "b")])) == [12000, 12000]


def test_pass_rides_free_and_is_denied_when_reused_within_five_minutes() -> None:
    month = PassIn("pass_month", T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=29))
    taps = [tap(1, 0, "a"), tap(2, 1, "a"), tap(3, 120, "b"), tap(4, 301, "c")]
    result = rate(ALMATY, "student", taps, [month])
    assert [(r.outcome, r.reason) for r in result] == [
        ("accepted", None), ("double_tap", "double_tap"), ("denied", "passback"), ("accepted", None)]
    assert fares_of(result) == [0, 0, 0, 0]
    expired = PassIn("pass_month", T0 - dt.timedelta(days=31), T0 - dt.timedelta(days=1))
    assert fares_of(rate(ALMATY, "student", [tap(1, 0)], [expired])) == [6000]


def test_pass_prices_per_category() -> None:
    prices = {c: ALMATY.product_amount("pass_month", c) for c in ("standard", "student", "school", "pensioner")}
    assert prices == {"standard": 990000, "student": 420000, "school": 200000, "pensioner": 300000}


def test_daily_and_weekly_caps() -> None:
    capped = dataclasses.replace(ALMATY, config=dataclasses.replace(
        ALMATY.config, daily_cap={"standard": 30000}, weekly_cap={"standard": 50000}))
    day1 = [tap(i, i * 600, f"v{i}") for i in range(4)]
    result = rate(capped, "standard", day1)
    assert fares_of(result) == [12000, 12000, 6000, 0]
    assert [r.capped for r in result] == [False, False, True, True]
    day2 = [TapIn(f"d2-{i}", T0 + dt.timedelta(days=1, seconds=i * 600), f"v{i}", "R12") for i in range(3)]
    assert fares_of(rate(capped, "standard", day1 + day2))[4:] == [12000, 8000, 0]  # the week's cap is reached
    assert fares_of(rate(capped, "student", day1)) == [6000] * 4  # no cap for students


def test_time_of_day_prices_from_timeframes() -> None:
    rows = DEFAULT_RULES["almaty_2024"]
    offpeak = dataclasses.replace(
        rows,
        products=(*rows.products, FareProduct("ride_offpeak", 9000, "standard", "onay_card")),
        leg_rules=(*rows.leg_rules, LegRule("ride_offpeak", "bus_ride", from_timeframe_group_id="offpeak",
                                            rule_priority=1)),
        timeframes=(TimeframeRow("offpeak", 10 * 3600, 16 * 3600),),
    )
    profile = build_profile("almaty_2024", offpeak)
    assert fares_of(rate(profile, "standard", [tap(1, 0)])) == [12000]  # 08:00 local
    assert fares_of(rate(profile, "standard", [tap(1, 3 * 3600)])) == [9000]  # 11:00 local


def test_rating_window_is_the_local_day() -> None:
    start, end = rating_window(ALMATY, T0)
    assert start.utcoffset() == dt.timedelta(0)
    assert (end - start) == dt.timedelta(days=1)
    assert start <= T0 < end
    assert start.astimezone(dt.timezone(dt.timedelta(hours=5))).hour == 0


def test_rating_window_is_the_local_iso_week_under_a_weekly_cap() -> None:
    """Windows are remembered per local day; a daily and a weekly profile asking for the same day get their own."""
    weekly = dataclasses.replace(ALMATY, config=dataclasses.replace(ALMATY.config, weekly_cap={"standard": 50000}))
    local = dt.timezone(dt.timedelta(hours=5))
    for days in range(8):
        at = T0 + dt.timedelta(days=days)
        start, end = rating_window(weekly, at)
        assert (end - start) == dt.timedelta(days=7) and start <= at < end
        assert start.astimezone(local).weekday() == 0 and start.astimezone(local).hour == 0
        day_start, day_end = rating_window(ALMATY, at)
        assert (day_end - day_start) == dt.timedelta(days=1) and day_start <= at < day_end
        assert day_start.astimezone(local).date() == at.astimezone(local).date()


TAPS = st.lists(st.tuples(st.integers(0, 6 * 3600), st.sampled_from(["a", "b", "c"])),
                min_size=1, max_size=12, unique_by=lambda t: t[0])


@settings(max_examples=200, deadline=None)
@given(raw=TAPS, order=st.randoms(use_true_random=False),
       profile=st.sampled_from([ALMATY, ASTANA]), category=st.sampled_from(["standard", "student", "veteran"]))
def test_rating_does_not_depend_on_arrival_order(raw: list[tuple[int, str]], order: random.Random,
                                                 profile: FareProfile, category: str) -> None:
    taps = [tap(i, s, v) for i, (s, v) in enumerate(raw)]
    shuffled = list(taps)
    order.shuffle(shuffled)
    assert rate(profile, category, shuffled) == rate(profile, category, taps)
