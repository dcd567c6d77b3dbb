"""Inferred blocks against real ones: does ``prediction.gtfs.blocks.next_trips`` chain trips as the buses really ran?

``python bench/blocks.py`` reads the real data in place:

- Austin (no ``block_id``): the real pings say which trip each bus ran after which (a bus's trips in the order of
  their first ping, per day). Precision is the share of observed trips with an observed next trip whose inferred
  next trip is that one; recall is the share of observed (trip, next trip) pairs that we inferred.
- HART Tampa and Almaty (with ``block_id``): the blocks are hidden, inferred, and compared with the feed's next trip
  of each block (precision over the inferred pairs, recall over the feed's pairs).

Austin's feed gives every trip one all-week service although its trips come from weekday, Saturday and Sunday
timetables, so chains there mix trips that never run on the same day. A second Austin line gives each trip the
service "the set of days it was seen on" (the calendar the feed lost) to measure the chaining rule itself.

Almaty's blocks are generated (``gtfs_data/build_almaty.py``: a greedy first-in first-out roster, 300 s minimum
stand, no maximum), so the greedy rule that mirrors that generator scores higher there; Austin and HART are real.

Each line also scores, in the same run, the simulator's greedy earliest-free chains (``infer_blocks``) on the same
pairs, so the assignment's gain is a ratio measured here. Prints ``<feed> <rule> precision=… recall=… pairs=…``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.avl.avlio import read_pings
from prediction.gtfs.blocks import next_trips
from prediction.gtfs.schedule import read_schedule
from prediction.network import Network, build_network, infer_blocks

IntArray = npt.NDArray[np.int64]
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HIDDEN = {"hart": DATA / "gtfs" / "hart_tampa_2016.zip", "almaty": Path(__file__).resolve().parents[1] / "gtfs_data"
          / "almaty"}


def observed_pairs(net: Network, ping_files: list[Path]) -> pd.DataFrame:
    """Per ping file (a day) and vehicle, the feed trips the vehicle ran in the order of their first ping: one row
    per trip with ``trip`` (index into ``net.trip_ids``) and ``after`` (the next one, -1 for its last)."""
    index = pd.Series(np.arange(len(net.trip_ids)), index=net.trip_ids)
    rows = []
    for day, path in enumerate(ping_files):
        pings = read_pings([path]).pings
        pings = pings[pings["trip_id"].isin(index.index)]
        first = pings.groupby(["vehicle_id", "trip_id"], as_index=False)["t"].min().sort_values(["vehicle_id", "t"])
        trip = index.loc[first["trip_id"].to_numpy()].to_numpy()
        same = first["vehicle_id"].to_numpy()[1:] == first["vehicle_id"].to_numpy()[:-1]
        after = np.append(np.where(same, trip[1:], -1), -1)
        rows.append(pd.DataFrame({"day": day, "trip": trip, "after": after}))
    return pd.concat(rows, ignore_index=True)


def scores_on_observed(following: IntArray, observed: pd.DataFrame) -> tuple[float, float, int]:
    """Precision, recall and the number of observed (trip, next trip) pairs (see the module docstring)."""
    pairs = observed[observed["after"] >= 0]
    hit = following[pairs["trip"].to_numpy()] == pairs["after"].to_numpy()
    predicted = following[pairs["trip"].to_numpy()] >= 0
    return float(hit.sum() / max(predicted.sum(), 1)), float(hit.mean()), len(pairs)


def scores_on_blocks(following: IntArray, truth: IntArray) -> tuple[float, float, int]:
    """Precision over the inferred pairs, recall over the true pairs, and the number of true pairs."""
    hit = (following == truth) & (truth >= 0)
    return float(hit.sum() / max((following >= 0).sum(), 1)), float(hit.sum() / max((truth >= 0).sum(), 1)), int(
        (truth >= 0).sum())


def greedy_next_trips(net: Network) -> IntArray:
    """The simulator's chains (``infer_blocks``, per service) as next trips, for comparison."""
    out = np.full(len(net.trip_ids), -1, dtype=np.int64)
    start = net.visit_dep[net.visit_ptr[:-1]]
    for service in np.unique(net.trip_service.astype(str)):
        running = np.flatnonzero(net.trip_service.astype(str) == service)
        vehicle = infer_blocks(net, running)[running]
        rank = np.lexsort((start[running], vehicle))
        order, same = running[rank], vehicle[rank][1:] == vehicle[rank][:-1]
        out[order[:-1][same]] = order[1:][same]
    return out


def services_from_days(net: Network, observed: pd.DataFrame) -> Network:
    """The same network with each trip's service the set of days it was observed on (unseen trips: one more)."""
    days = observed.groupby("trip")["day"].agg(lambda d: ",".join(str(x) for x in sorted(set(d))))
    service = np.full(len(net.trip_ids), "unseen", dtype=object)
    service[days.index.to_numpy()] = days.to_numpy()
    return dataclasses.replace(net, trip_service=service, blocks={})


def hide_blocks(net: Network) -> Network:
    """The same network with every ``block_id`` removed."""
    return dataclasses.replace(net, trip_block=np.full(len(net.trip_ids), None, dtype=object), blocks={})


RULES: dict[str, Callable[[Network], IntArray]] = {"assignment": next_trips, "greedy": greedy_next_trips}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    austin = build_network(read_schedule(args.data / "gtfs" / "austin_capmetro_2016.zip", canonical=False))
    observed = observed_pairs(austin, sorted((args.data / "avl" / "austin_capmetro_2016").glob("pings_*.csv")))
    for label, net in (("austin", austin), ("austin services-from-days", services_from_days(austin, observed))):
        for rule, infer in RULES.items():
            precision, recall, pairs = scores_on_observed(infer(net), observed)
            print(f"{label} {rule} precision={precision:.3f} recall={recall:.3f} pairs={pairs}")
    for name, path in HIDDEN.items():
        net = build_network(read_schedule(path, canonical=False))
        truth = next_trips(net)
        for rule, infer in RULES.items():
            precision, recall, pairs = scores_on_blocks(infer(hide_blocks(net)), truth)
            print(f"{name} hidden blocks {rule} precision={precision:.3f} recall={recall:.3f} pairs={pairs}")


if __name__ == "__main__":
    main()
