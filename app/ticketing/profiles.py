"""The shipped fare profiles: project config plus default Fares v2 rows used when the feed carries none.

- ``almaty_2024``: 120 ₸ per ride by card; 60 ₸ for students, school pupils, pensioners and mothers of large
  families; free for WWII veterans, pensioners over 75 and people with disabilities; monthly passes 9,900 /
  4,200 student / 2,000 school / 3,000 pensioner ₸. No free transfer.
- ``astana``: one free transfer within 60 minutes of the first validation (a Fares v2 transfer rule).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.ticketing.fares import FareProduct, FareProfile, LegRule, ProjectConfig, TimeframeRow, TransferRule

__all__ = ["CONFIGS", "DEFAULT_RULES", "FareRows", "build_profile"]

TENGE = 100  # tiyn

CONCESSION = ("student", "school", "pensioner", "large_family")
FREE = ("veteran", "pensioner_75", "disability")
CATEGORIES = ("standard", *CONCESSION, *FREE)


@dataclass(frozen=True)
class FareRows:
    """The Fares v2 rows of one feed, as plain values."""

    categories: tuple[str, ...]
    default_category: str
    products: tuple[FareProduct, ...]
    leg_rules: tuple[LegRule, ...]
    transfer_rules: tuple[TransferRule, ...] = ()
    timeframes: tuple[TimeframeRow, ...] = ()
    route_networks: tuple[tuple[str, str], ...] = ()


def _products(ride: int, concession: int) -> tuple[FareProduct, ...]:
    media = "onay_card"
    rows = [FareProduct("ride", ride, "standard", media)]
    rows += [FareProduct("ride_concession", concession, c, media) for c in CONCESSION]
    rows += [FareProduct("ride_free", 0, c, media) for c in FREE]
    passes = {"standard": 9_900, "student": 4_200, "school": 2_000, "pensioner": 3_000}
    rows += [FareProduct("pass_month", amount * TENGE, c, media) for c, amount in passes.items()]
    return tuple(rows)


_LEGS = tuple(LegRule(p, leg_group_id="bus_ride") for p in ("ride", "ride_concession", "ride_free", "pass_month"))

DEFAULT_RULES: dict[str, FareRows] = {
    "almaty_2024": FareRows(
        categories=CATEGORIES, default_category="standard", products=_products(120 * TENGE, 60 * TENGE),
        leg_rules=_LEGS,
        # "A + AB + B" with no transfer product: changing buses costs both legs in full
        transfer_rules=(TransferRule(1, "bus_ride", "bus_ride", transfer_count=-1),),
    ),
    "astana": FareRows(
        categories=CATEGORIES, default_category="standard", products=_products(100 * TENGE, 50 * TENGE),
        leg_rules=_LEGS,
        # "A + AB" with no transfer product: one free transfer within 3600 s
        transfer_rules=(TransferRule(0, "bus_ride", "bus_ride", transfer_count=1, duration_limit=3600),),
    ),
}

CONFIGS: dict[str, ProjectConfig] = {
    "almaty_2024": ProjectConfig(name="almaty_2024", timezone="Asia/Almaty", pass_days={"pass_month": 30}),
    "astana": ProjectConfig(name="astana", timezone="Asia/Almaty", pass_days={"pass_month": 30},
                            transfer_window_from="first"),
}


def build_profile(name: str, rows: FareRows | None = None) -> FareProfile:
    """The profile ``name`` with the feed's Fares v2 ``rows`` (or the profile's defaults when ``None``)."""
    if name not in CONFIGS:
        raise KeyError(f"unknown fare profile {name!r}; known: {', '.join(sorted(CONFIGS))}")
    data = rows if rows is not None else DEFAULT_RULES[name]
    return FareProfile(
        config=CONFIGS[name], default_category=data.default_category, categories=data.categories,
        products=data.products, leg_rules=data.leg_rules, transfer_rules=data.transfer_rules,
        timeframes=data.timeframes, route_networks=dict(data.route_networks),
    )
