"""``qala model train|evaluate|list`` and ``qala backtest``: arrival-prediction models from feeds and ping CSVs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from prediction.features import KnownEvents
    from prediction.sim_network import SimNetwork

__all__ = ["backtest_command", "model_group"]

_MODELS = click.option("--models", "models", type=click.Path(file_okay=False, path_type=Path),
                       envvar="QALA_MODEL_DIR", default="instance/models", show_default=True,
                       help="Model folder (env QALA_MODEL_DIR).")


def _history(gtfs: Path, pings: tuple[Path, ...]) -> tuple[SimNetwork, KnownEvents]:
    """The feed as a network and the stop events of every ping file, with when each became known."""
    from prediction.avlio import PingFileError, read_pings
    from prediction.events import derive_events
    from prediction.features import prepare_events
    from prediction.feedcheck import FeedInvalid
    from prediction.schedule import read_schedule
    from prediction.sim_network import build_network

    try:
        net = build_network(read_schedule(gtfs, canonical=False))
    except FeedInvalid as exc:
        raise click.ClickException(f"{gtfs}: not a usable GTFS feed ({len(exc.issues)} errors)") from exc
    try:
        read = read_pings(pings)
    except PingFileError as exc:
        raise click.ClickException(str(exc)) from exc
    for reason, count in sorted(read.rejected.items()):
        click.echo(f"rejected {count} pings: {reason}", err=True)
    click.echo(f"{len(read.pings)} pings; deriving stop events…", err=True)
    events = derive_events(net, read.pings)
    click.echo(f"{len(events)} stop events", err=True)
    return net, prepare_events(net, events, read.pings)


def _epoch(moment: dt.datetime) -> float:
    if moment.tzinfo is None:
        raise click.BadParameter("give a UTC offset, e.g. 2016-12-16T00:00:00-06:00")
    return moment.timestamp()


def _iso(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not ISO 8601") from exc


def _bar(desc: str):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return lambda times: tqdm(times, desc=desc, unit="step", mininterval=1.0)


@click.command("backtest")
@click.option("--gtfs", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--pings", type=click.Path(exists=True, path_type=Path), multiple=True, required=True)
@click.argument("more", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--train-until", "train_until", required=True, help="ISO 8601 cutoff with offset.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--step", type=click.FloatRange(1, 3600), default=30.0, show_default=True,
              help="Seconds between prediction cycles in the replay.")
def backtest_command(gtfs: Path, pings: tuple[Path, ...], more: tuple[Path, ...], train_until: str,
                     json_out: Path, step: float) -> None:
    """Train on stop events before --train-until, replay the pings after it every --step s, score 4 predictors."""
    from prediction.backtest import backtest, format_table

    cutoff = _epoch(_iso(train_until))
    net, known = _history(gtfs, (*pings, *more))
    if not (known.known_at < cutoff).any() or not (known.arrival >= cutoff).any():
        raise click.ClickException("need stop events both before and after --train-until")
    report = backtest(net, known, cutoff, step_s=step, progress=_bar("replay"))
    json_out.write_text(json.dumps(report, indent=2))
    click.echo(format_table(report))
    click.echo(f"wrote {json_out}")


@click.group("model")
def model_group() -> None:
    """Arrival-prediction model files: train, evaluate, list."""


@model_group.command("train")
@click.option("--gtfs", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--pings", type=click.Path(exists=True, path_type=Path), multiple=True, required=True)
@click.argument("more", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--train-until", "train_until", default=None, help="ISO 8601 cutoff (default: all data).")
@_MODELS
def model_train(gtfs: Path, pings: tuple[Path, ...], more: tuple[Path, ...], train_until: str | None,
                models: Path) -> None:
    """Fit the quantile model on stop events from ping CSVs and save it with its metadata."""
    import pandas as pd

    from prediction.artifacts import save_model
    from prediction.backtest import training_set
    from prediction.models import QuantileETAModel

    net, known = _history(gtfs, (*pings, *more))
    cutoff = _epoch(_iso(train_until)) if train_until else float(known.known_at.max()) + 1.0
    training = training_set(net, known, cutoff)
    model = QuantileETAModel().fit(training.rows, training.target)
    start = pd.Timestamp(float(known.known_at.min()), unit="s", tz="UTC").tz_convert(net.tz).isoformat()
    until = pd.Timestamp(cutoff, unit="s", tz="UTC").tz_convert(net.tz).isoformat()
    path = save_model(models, model, training.history, train_from=start, train_until=until,
                      feed_source=str(gtfs), feed_sha256=net.feed.sha256,
                      metrics={"training_rows": len(training.rows), "kalman_gain": training.history.gain})
    click.echo(f"trained on {len(training.rows)} rows ({start} … {until}); wrote {path}")


@model_group.command("evaluate")
@click.option("--gtfs", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--pings", type=click.Path(exists=True, path_type=Path), multiple=True, required=True)
@click.argument("more", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--from", "start", required=True, help="ISO 8601: replay from here (after the training window).")
@click.option("--step", type=click.FloatRange(1, 3600), default=30.0, show_default=True)
@_MODELS
def model_evaluate(gtfs: Path, pings: tuple[Path, ...], more: tuple[Path, ...], start: str, step: float,
                   models: Path) -> None:
    """Replay pings from --from with the newest good model beside the three baselines; print the table."""
    import pandas as pd

    from prediction.artifacts import load_predictor
    from prediction.backtest import format_table, replay
    from prediction.features import FEATURES
    from prediction.metrics import score_predictions
    from prediction.models import BASELINES

    net, known = _history(gtfs, (*pings, *more))
    loaded = load_predictor(models, feed_sha256=net.feed.sha256)
    for reason in loaded.skipped:
        click.echo(f"skipped {reason}", err=True)
    if loaded.history is None:
        raise click.ClickException(f"no usable model in {models}; run 'qala model train'")
    empty = pd.DataFrame(columns=list(FEATURES))
    predictors = {"model": loaded.estimator, **{name: cls().fit(empty) for name, cls in BASELINES.items()}}
    begin = _epoch(_iso(start))
    result = replay(net, known, loaded.history, predictors, begin, float(known.known_at.max()) + step,
                    step_s=step, progress=_bar("evaluate"))
    report = {"predictors": {n: score_predictions(result.made_at, p, result.actual,
                                                  *((result.lower, result.upper) if n == "model" else (None, None))
                                                  ).as_dict() for n, p in result.predicted.items()}}
    click.echo(f"model {loaded.metadata.get('file')}")
    click.echo(format_table(report))


@model_group.command("list")
@_MODELS
def model_list(models: Path) -> None:
    """Model files, newest first, with their training window and feed."""
    from prediction.artifacts import list_models

    rows = list_models(models) if models.is_dir() else []
    if not rows:
        click.echo(f"no models in {models}")
    for meta in rows:
        if "error" in meta:
            click.echo(f"{meta['file']}  UNUSABLE: {meta['error']}")
            continue
        window = meta["training_window"]
        click.echo(f"{meta['file']}  trained {window['from']} … {window['until']}  "
                   f"feed {meta['feed']['sha256'][:12]}  sklearn {meta['libraries']['scikit-learn']}")
