"""Stop search at city scale: ``app.schedule.search.StopIndex`` over 3,000 stops against a plain substring scan.

``python bench/search.py`` builds a synthetic city of ``--stops`` stops named like Almaty's: each stop is a
crossing "A – B" of two streets taken from the demo feed's own trilingual names (``gtfs_data/almaty``: the Russian,
Kazakh and English spelling of each street, aligned from its "A – B" stop names), with every stop's ru/kk/en names
indexed. It then times ``--queries`` queries that riders type — a Russian street, an English (Latin) street, two
streets, and a street with one typo (a swapped, dropped or changed letter) — against the baseline measured in the
same run over the same names: a casefolded substring scan (what the search did before, without its SQL).

Prints ``stops=… build_ms=… queries_per_s=… p50_ms=… p99_ms=… ratio_to_substring=…`` (mean time per query, ours
over the scan's), the same in CPU time of the querying thread (``…_cpu``: steadier on a shared machine) and,
per kind of query, the share whose intended stop is among the answers, for both: ``found[kind]=ours/substring``.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from app.schedule.search import StopIndex, StopNames

FEED = Path(__file__).resolve().parents[1] / "gtfs_data" / "almaty"
LANGUAGES = ("ru", "kk", "en")


def demo_streets() -> list[tuple[str, str, str]]:
    """(ru, kk, en) spellings of each street of the demo feed, aligned from its "A – B" stop names."""
    names: dict[str, dict[str, str]] = defaultdict(dict)
    with (FEED / "translations.txt").open(encoding="utf-8") as rows:
        for row in csv.DictReader(rows):
            if row["table_name"] == "stops" and row["field_name"] == "stop_name":
                names[row["record_id"]][row["language"]] = row["translation"]
    streets = set()
    for by_language in names.values():
        parts = [by_language.get(lang, "").split(" – ") for lang in LANGUAGES]
        if all(len(p) == 2 for p in parts):
            streets.update(zip(*parts, strict=True))
    return sorted(streets)


def synthetic_city(n: int, rng: random.Random) -> tuple[list[StopNames], dict[str, tuple[int, int]]]:
    """``n`` crossings of two demo streets (each pair once, a number added when the city needs more)."""
    streets = demo_streets()
    pairs = [(a, b) for a in range(len(streets)) for b in range(len(streets)) if a != b]
    rng.shuffle(pairs)
    stops, crossing = [], {}
    for i in range(n):
        a, b = pairs[i % len(pairs)]
        suffix = f" {i // len(pairs) + 1}" if i >= len(pairs) else ""
        names = tuple(f"{streets[a][k]} – {streets[b][k]}{suffix}" for k in range(len(LANGUAGES)))
        stop_id = f"S{i}"
        stops.append(StopNames(stop_id, names, str(10000 + i), popularity=rng.randint(0, 400)))
        crossing[stop_id] = (a, b)
    return stops, crossing


def typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "change"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "drop":
        return word[:i] + word[i + 1:]
    return word[:i] + rng.choice("aeiouаеиоу") + word[i + 1:]


def queries(stops: list[StopNames], crossing: dict[str, tuple[int, int]], n: int,
            rng: random.Random) -> list[tuple[str, str, str]]:
    """(kind, query, the stop it looks for): a quarter of each kind."""
    streets = demo_streets()
    out = []
    for i in range(n):
        stop = rng.choice(stops)
        a, b = crossing[stop.stop_id]
        kind = ("russian", "latin", "two streets", "typo")[i % 4]
        if kind == "russian":
            q = streets[a][0]
        elif kind == "latin":
            q = streets[b][2]
        elif kind == "two streets":
            q = f"{streets[a][0].split()[0]} {streets[b][2].split()[0]}"
        else:
            longest = max(streets[a][0].split(), key=len)
            q = typo(longest, rng) if len(longest) >= 5 else longest
        out.append((kind, q, stop.stop_id))
    return out


def substring_scan(stops: list[StopNames]) -> Callable[[str], list[str]]:
    folded = [(s.stop_id, " ".join((*s.names, s.code or "")).casefold()) for s in stops]

    def scan(q: str) -> list[str]:
        needle = q.casefold()
        return [stop_id for stop_id, text in folded if needle in text]

    return scan


def timed(search: Callable[[str], list[str]],
          asked: list[tuple[str, str, str]]) -> tuple[list[float], list[float], list[bool]]:
    """Wall and CPU seconds per query (CPU: the machine is shared, so a busy neighbour shows in wall time only),
    and whether the intended stop was answered."""
    wall, cpu, found = [], [], []
    for _, q, wanted in asked:
        start, start_cpu = time.perf_counter(), time.thread_time()
        answer = search(q)
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)
        found.append(wanted in answer)
    return wall, cpu, found


def p99_ms(seconds: list[float]) -> float:
    return statistics.quantiles([s * 1000 for s in seconds], n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stops", type=int, default=3000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    stops, crossing = synthetic_city(args.stops, rng)
    start = time.perf_counter()
    index = StopIndex(stops)
    build_ms = (time.perf_counter() - start) * 1000
    asked = queries(stops, crossing, args.queries, rng)
    scan = substring_scan(stops)
    timed(scan, asked[:50])  # warm both up alike
    timed(lambda q: index.search(q).stop_ids, asked[:50])
    base_s, base_cpu, base_found = timed(scan, asked)
    ours_s, ours_cpu, ours_found = timed(lambda q: index.search(q).stop_ids, asked)
    print(f"stops={len(index)} build_ms={build_ms:.0f} queries={len(asked)} "
          f"queries_per_s={len(ours_s) / sum(ours_s):.0f} p50_ms={statistics.median(ours_s) * 1000:.2f} "
          f"p99_ms={p99_ms(ours_s):.2f} p99_cpu_ms={p99_ms(ours_cpu):.2f} "
          f"ratio_to_substring={statistics.mean(ours_s) / statistics.mean(base_s):.1f} "
          f"ratio_to_substring_cpu={statistics.mean(ours_cpu) / statistics.mean(base_cpu):.1f} "
          f"substring_p99_ms={p99_ms(base_s):.2f}")
    for kind in ("russian", "latin", "two streets", "typo"):
        mine = [f for (k, _, _), f in zip(asked, ours_found, strict=True) if k == kind]
        theirs = [f for (k, _, _), f in zip(asked, base_found, strict=True) if k == kind]
        print(f"found[{kind}]={sum(mine) / len(mine):.0%}/{sum(theirs) / len(theirs):.0%}")


if __name__ == "__main__":
    main()
