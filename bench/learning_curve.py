"""Issue 15's learning curve: how each predictor scores with 0 h, 3 h, 1 day and all of the history before the
cutoff, on real Austin (trained on 2016-11-24..27, tested on 2016-12-16) and on simulated Almaty (8 days, seed 5,
30 s pings: the first 7 before the cutoff, tested on the 8th). A new city starts with no history, and the
production predictor (``model``) must be at or above the best baseline at every point: a line per point says
whether it is.

The ETA benchmark here scores every slot (each replay moment in the 15 min before an observed arrival) on what
the stop board showed: the live prediction, else the timetable where the board shows it, else nothing =
inaccurate. ``live`` counts live predictions only, ``shown`` is the share of slots with one, ``made`` the
benchmark of the predictions made alone. ``model`` re-chooses online hour by hour as the worker does; ``model
file`` is the same model without that (the model file's choice alone). Events are derived in memory with
``qala backtest``'s own helpers (no database round trip: the stored rows are the derived ones, as
tests/test_backtest.py checks).

    OMP_NUM_THREADS=1 .venv/bin/python bench/learning_curve.py --dataset austin --step 120 --train-step 900
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from app.prediction_cli import _history
from prediction.eta.backtest import backtest
from prediction.eta.features import KnownEvents
from prediction.gtfs.schedule import read_schedule
from prediction.network import Network
from prediction.sim.simulate import simulate_days

ROOT = Path(__file__).resolve().parents[1]
POINTS: tuple[tuple[str, float | None], ...] = (("0 h", 0.0), ("3 h", 3.0), ("1 day", 24.0), ("all", None))
AUSTIN_DAYS = ("2016-11-24", "2016-11-25", "2016-11-26", "2016-11-27", "2016-12-16")
AUSTIN_CUTOFF = "2016-12-16T00:00:00-06:00"
ALMATY_START, ALMATY_DAYS, ALMATY_CUTOFF = dt.date(2026, 3, 2), 8, "2026-03-09T00:00:00+05:00"
BUCKETS = ("0-3", "3-6", "6-10", "10-15")


def austin(data: Path) -> tuple[Network, KnownEvents, float]:
    folder = data / "avl" / "austin_capmetro_2016"
    pings = tuple(folder / f"pings_{day}.csv" for day in AUSTIN_DAYS)
    net, known = _history(data / "gtfs" / "austin_capmetro_2016.zip", pings)
    return net, known, dt.datetime.fromisoformat(AUSTIN_CUTOFF).timestamp()


def almaty(folder: Path) -> tuple[Network, KnownEvents, float]:
    """Simulate the days into ``folder`` (as ``qala simulate`` does) and derive their events."""
    feed = ROOT / "gtfs_data" / "almaty"
    simulate_days(read_schedule(feed, canonical=False), ALMATY_START, ALMATY_DAYS, folder, seed=5,
                  ping_interval_s=30.0, progress=print)
    net, known = _history(feed, tuple(sorted(folder.glob("pings_*.csv"))))
    return net, known, dt.datetime.fromisoformat(ALMATY_CUTOFF).timestamp()


def _pct(value: object) -> str:
    return "   —  " if value is None else f"{100 * float(value):5.1f}%"  # type: ignore[arg-type]


def rows(dataset: str, point: str, report: dict[str, Any]) -> Iterator[str]:
    """The table rows of one point: per predictor the benchmark over every slot, per bucket, and the rest."""
    for name, p in report["predictors"].items():
        eta = p["eta_benchmark"]
        yield (f"{dataset:<8}{point:<7}{name:<11}{p['slots']:>9} {_pct(eta['overall'])} "
               + " ".join(_pct(eta[b]) for b in BUCKETS)
               + f" {_pct(p['eta_benchmark_live']['overall'])} {_pct(p['coverage']['overall'])}"
               + f" {_pct(p['eta_benchmark_predictions_only']['overall'])}")
        if name == "model" and "model_file_only" in report:  # the same model without online re-selection
            file_only = report["model_file_only"]
            eta = file_only["eta_benchmark"]
            yield (f"{dataset:<8}{point:<7}{'model file':<11}{file_only['slots']:>9} {_pct(eta['overall'])} "
                   + " ".join(_pct(eta[b]) for b in BUCKETS)
                   + f" {_pct(file_only['eta_benchmark_live']['overall'])} {_pct(file_only['coverage']['overall'])}"
                   + f" {'':>6}")


def verdicts(dataset: str, point: str, report: dict[str, Any]) -> Iterator[str]:
    """Whether ``model`` is at or above the best baseline, overall and on current / next trips apart."""
    for part in ("predictors", "current_trips", "next_trips"):
        scores = report.get(part)
        if not scores:
            continue
        overall = {name: p["eta_benchmark"]["overall"] or 0.0 for name, p in scores.items()}
        model = overall.pop("model")
        best = max(overall, key=lambda name: overall[name])
        gap = 100 * (model - overall[best])
        label = "all trips" if part == "predictors" else part.replace("_", " ")
        yield (f"{dataset} {point} {label}: model {100 * model:.1f}% vs best baseline {best} "
               f"{100 * overall[best]:.1f}% ({gap:+.1f} points) -> {'OK' if gap >= 0 else 'BELOW'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("austin", "almaty", "both"), default="both")
    parser.add_argument("--step", type=float, default=30.0, help="Seconds between replay moments.")
    parser.add_argument("--train-step", type=float, default=300.0, help="Seconds between training snapshots.")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="Shared data folder.")
    parser.add_argument("--json", type=Path, default=None, help="Also write every report here.")
    args = parser.parse_args()
    names = ("austin", "almaty") if args.dataset == "both" else (args.dataset,)
    table = [f"{'dataset':<8}{'history':<7}{'predictor':<11}{'slots':>9} {'ETA':>6} "
             + " ".join(f"{b:>6}" for b in BUCKETS) + f" {'live':>6} {'shown':>6} {'made':>6}"]
    lines: list[str] = []
    reports: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="qala-curve-") as folder, threadpool_limits(1, user_api="openmp"):
        for dataset in names:
            net, known, cutoff = austin(args.data) if dataset == "austin" else almaty(Path(folder))
            for point, hours in POINTS:
                print(f"{dataset}: {point} of history…", flush=True)
                report = backtest(net, known, cutoff, step_s=args.step, train_step_s=args.train_step,
                                  history_hours=hours)
                reports[f"{dataset} {point}"] = report
                table.extend(rows(dataset, point, report))
                lines.extend(verdicts(dataset, point, report))
    print("\n".join(table))
    print("\n".join(lines))
    if args.json is not None:
        args.json.write_text(json.dumps(reports, indent=2))


if __name__ == "__main__":
    main()
