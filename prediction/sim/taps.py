"""Card taps from simulated boardings: one tap per boarding rider, on the vehicle's validator, at the stop.

Riders come from a fixed population (same seed, same cards) with the Almaty fare-category mix; frequent riders
tap more often than occasional ones. A share of boardings are transfers: the card of someone who tapped
5–60 minutes earlier on another vehicle. The simulator does not decide fares — it records who tapped, with
which category and whether the card holds a pass, and the fare engine rates the taps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.network import Network
from prediction.sim.day import DayTruth
from prediction.sim.params import SimParams

__all__ = ["PASS_CATEGORIES", "RiderPopulation", "generate_taps"]

IntArray = npt.NDArray[np.int64]
PASS_CATEGORIES = ("standard", "student", "school", "pensioner")  # the Almaty monthly passes
_CARD_PREFIX = 9643


@dataclass(frozen=True)
class RiderPopulation:
    """Card number, fare category and pass holding of every rider; drawn once per seed."""

    card: npt.NDArray[np.object_]
    category: npt.NDArray[np.object_]
    has_pass: npt.NDArray[np.bool_]

    @classmethod
    def draw(cls, params: SimParams, seed: int) -> RiderPopulation:
        rng = np.random.default_rng([seed, 11])
        names = list(params.rider_mix)
        shares = np.array([params.rider_mix[n] for n in names], dtype=float)
        category = np.array(names, dtype=object)[rng.choice(len(names), params.riders, p=shares / shares.sum())]
        eligible = np.isin(category, PASS_CATEGORIES)
        has_pass = eligible & (rng.random(params.riders) < params.pass_share / max(eligible.mean(), 1e-9))
        # 19-digit card numbers: a fixed issuer prefix and a 15-digit serial spread over the range
        serial = (np.arange(params.riders, dtype=np.int64) * 7_919_113_337 + 104_729 + seed) % 10**15
        card = np.array([f"{_CARD_PREFIX}{s:015d}" for s in serial], dtype=object)
        return cls(card, category, has_pass)


def generate_taps(truth: DayTruth, net: Network, riders: RiderPopulation, params: SimParams, *,
                  seed: int) -> pd.DataFrame:
    """One row per boarding: GTFS seconds ``t`` of the day, card, category, pass, vehicle, device, stop, trip."""
    rng = np.random.default_rng([seed, truth.day.toordinal(), 13])
    visit_rows = np.repeat(np.arange(len(truth.visit)), truth.boardings)
    order_in_visit = np.arange(len(visit_rows)) - np.repeat(np.cumsum(truth.boardings) - truth.boardings,
                                                            truth.boardings)
    t = truth.arrival[visit_rows] + params.door_s / 2 + order_in_visit * params.boarding_s
    trip_local = np.searchsorted(truth.visit_ptr, visit_rows, side="right") - 1
    vehicle = truth.vehicle[trip_local]
    sort = np.lexsort((order_in_visit, t))
    t, visit_rows, trip_local, vehicle = t[sort], visit_rows[sort], trip_local[sort], vehicle[sort]
    rider, transfer = _riders_for(rng, t, vehicle, len(riders.card), params)
    door = rng.integers(0, 2, len(t))
    device = np.array([f"val-{v:04d}-{d}" for v, d in zip(vehicle, door, strict=True)], dtype=object)
    seq = pd.Series(np.ones(len(t), dtype=np.int64)).groupby(device).cumsum().to_numpy()
    trips = truth.trips[trip_local]
    return pd.DataFrame({
        "t": t, "card_id": riders.card[rider], "category": riders.category[rider],
        "has_pass": riders.has_pass[rider], "vehicle": vehicle, "device_id": device,
        "device_seq": seq + truth.day.toordinal() % 10_000 * 100_000, "route_id": net.route_ids[net.trip_route[trips]],
        "trip_id": net.trip_ids[trips], "stop_id": net.stop_ids[net.visit_stop[truth.visit[visit_rows]]],
        "is_transfer": transfer,
    })


def _riders_for(rng: np.random.Generator, t: npt.NDArray[np.float64], vehicle: IntArray, population: int,
                params: SimParams) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Rider index per tap (taps sorted by time), and which taps are transfers from another vehicle."""
    frequent = (population * rng.random(len(t)) ** 2).astype(np.int64)  # a skew: regulars ride most
    rider = frequent.copy()
    want = np.flatnonzero(rng.random(len(t)) < params.transfer_share)
    lo = np.searchsorted(t, t[want] - 3600.0)
    hi = np.searchsorted(t, t[want] - 300.0)
    ok = hi > lo
    source = lo[ok] + (rng.random(ok.sum()) * (hi[ok] - lo[ok])).astype(np.int64)
    other_bus = vehicle[source] != vehicle[want[ok]]
    target = want[ok][other_bus]
    rider[target] = frequent[source[other_bus]]
    transfer = np.zeros(len(t), dtype=bool)
    transfer[target] = True
    return rider, transfer
