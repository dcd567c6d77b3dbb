"""``qala model train|evaluate|list`` and ``qala backtest``: arrival-prediction models from feeds and ping CSVs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from app.progress import Progress

if TYPE_CHECKING:
    import pandas as pd

    from app.avl.network import FeedNetwork
    from app.db import Database
    from prediction.eta.features import KnownEvents
    from prediction.gtfs.schedule import ScheduleFeed
    from prediction.network import Network

__all__ = ["backtest_command", "model_group"]

_MODELS = click.option("--models", "models", type=click.Path(file_okay=False, path_type=Path),
                       envvar="QALA_MODEL_DIR", default="instance/models", show_default=True,
                       help="Model folder (env QALA_MODEL_DIR).")


def _feed_and_pings(gtfs: Path, pings: tuple[Path, ...]) -> tuple[ScheduleFeed, pd.DataFrame]:
    """The checked feed and the usable pings of every file (rejections counted on stderr)."""
    from prediction.avl.avlio import PingFileError, read_pings
    from prediction.gtfs.feedcheck import FeedInvalid
    from prediction.gtfs.schedule import read_schedule

    try:
        feed = read_schedule(gtfs, canonical=False)
    except FeedInvalid as exc:
        raise click.ClickException(f"{gtfs}: not a usable GTFS feed ({len(exc.issues)} errors)") from exc
    try:
        read = read_pings(pings)
    except PingFileError as exc:
        raise click.ClickException(str(exc)) from exc
    for reason, count in sorted(read.rejected.items()):
        click.echo(f"rejected {count} pings: {reason}", err=True)
    return feed, read.pings


def _history(gtfs: Path, pings: tuple[Path, ...]) -> tuple[Network, KnownEvents]:
    """The feed as a network and the stop events of every ping file, with when each became known (in memory)."""
    from prediction.avl.events import derive_events
    from prediction.eta.features import prepare_events
    from prediction.network import build_network

    feed, frame = _feed_and_pings(gtfs, pings)
    net = build_network(feed)
    click.echo(f"{len(frame)} pings; deriving stop events…", err=True)
    events = derive_events(net, frame)
    click.echo(f"{len(events)} stop events", err=True)
    return net, prepare_events(net, events, frame)


def _stored_history(url: str, gtfs: Path, pings: tuple[Path, ...]) -> tuple[Network, KnownEvents]:
    """What the live service would hold: the feed imported by the schedule importer into the database at
    ``url`` (migrated first; it must hold no feed yet), the stop events derived from every ping stored in
    ``avl_stop_events`` — and then both read back from there, so the replay sees the stored rows."""
    from sqlalchemy import func, select

    from app.avl.network import load_network
    from app.db import Database
    from app.migrate import upgrade
    from app.models import FeedVersion
    from app.schedule.importer import load_schedule
    from prediction.avl.events import derive_events
    from prediction.eta.features import prepare_events

    feed, frame = _feed_and_pings(gtfs, pings)
    upgrade(url)
    db = Database.from_url(url)
    try:
        with db.session() as session:
            if session.scalar(select(func.count()).select_from(FeedVersion)):
                raise click.ClickException("the backtest database must be empty (it already holds a feed)")
        click.echo(f"importing {gtfs} into {db.engine.url.render_as_string(hide_password=True)}…", err=True)
        version = load_schedule(db, feed, label=gtfs.name).feed_version_id
        with db.session() as session:
            network = load_network(session, version)
        click.echo(f"{len(frame)} pings; deriving stop events…", err=True)
        events = derive_events(network.net, frame)
        stored = _store_events(db, network, events, frame)
        click.echo(f"{len(events)} stop events derived, {len(stored)} stored and read back", err=True)
        return network.net, prepare_events(network.net, stored, frame)
    finally:
        db.engine.dispose()


def _store_events(db: Database, network: FeedNetwork, events: pd.DataFrame, frame: pd.DataFrame,
                  batch: int = 50_000) -> pd.DataFrame:
    """Write the events as the AVL service does (``upsert_events``) and read them back as derive_events rows,
    ``known_at`` included (the stored moment the live service emitted each event)."""
    import pandas as pd
    from sqlalchemy import select

    from app.avl.store import upsert_events
    from app.avl.tracker import event_rows
    from app.models import StopEvent

    with db.session() as session:
        for start in range(0, len(events), batch):
            upsert_events(session, event_rows(network, events.iloc[start:start + batch], frame))
        session.commit()
        query = select(StopEvent.trip_id, StopEvent.service_date, StopEvent.stop_sequence, StopEvent.stop_id,
                       StopEvent.arrival_at, StopEvent.departure_at, StopEvent.passed_between_pings,
                       StopEvent.known_at).where(StopEvent.feed_version_id == network.feed_version_id)
        stored = pd.read_sql(query, session.connection())
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    return pd.DataFrame({
        "trip_id": stored["trip_id"].astype(str),
        "start_date": pd.to_datetime(stored["service_date"]).dt.strftime("%Y%m%d"),
        "stop_sequence": stored["stop_sequence"].astype("int64"), "stop_id": stored["stop_id"].astype(str),
        "arrival": (pd.to_datetime(stored["arrival_at"], utc=True) - epoch).dt.total_seconds(),
        "departure": (pd.to_datetime(stored["departure_at"], utc=True) - epoch).dt.total_seconds(),
        "passed_between_pings": stored["passed_between_pings"].astype(bool),
        "known_at": (pd.to_datetime(stored["known_at"], utc=True) - epoch).dt.total_seconds(),
    })


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
@click.option("--train-step", "train_step", type=click.FloatRange(30, 7200), default=300.0, show_default=True,
              help="Seconds between the training snapshots before --train-until.")
@click.option("--database", "database_url", default=None,
              help="URL of an empty database to use instead of a temporary SQLite file (kept afterwards).")
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True,
              help="OpenMP threads for the boosted models (more than 1 crawls on a busy shared machine).")
@click.option("--history-hours", "history_hours", type=click.FloatRange(min=0), default=None,
              help="Keep only the last H hours of history before --train-until (0: a new city, no history).")
@click.option("--online/--no-online", default=True, show_default=True,
              help="Re-choose hourly from the arrivals seen, as the worker does (prediction/eta/online.py).")
def backtest_command(gtfs: Path, pings: tuple[Path, ...], more: tuple[Path, ...], train_until: str,
                     json_out: Path, step: float, train_step: float, database_url: str | None,
                     threads: int, history_hours: float | None, online: bool) -> None:
    """Import the feed and the stop events of the pings into a fresh temporary database, train on what is before
    --train-until, replay the pings after it every --step s as the live service would, and score 4 predictors."""
    import tempfile

    from prediction.eta.backtest import backtest, format_table

    cutoff = _epoch(_iso(train_until))
    with tempfile.TemporaryDirectory(prefix="qala-backtest-") as folder:
        url = database_url or f"sqlite:///{Path(folder) / 'backtest.db'}"
        net, known = _stored_history(url, gtfs, (*pings, *more))
    if not (known.arrival >= cutoff).any() or (history_hours != 0 and not (known.known_at < cutoff).any()):
        raise click.ClickException("need stop events both before and after --train-until")
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    # OpenMP threads spin while they wait for each other: with the cores busy a 2-thread fit measured over 20x
    # slower than a 1-thread one (13.7 s vs > 300 s for the same small fit at load 15)
    with threadpool_limits(limits=threads, user_api="openmp"):
        report = backtest(net, known, cutoff, step_s=step, train_step_s=train_step, history_hours=history_hours,
                          online=online, progress=_bar("replay"))
    json_out.write_text(json.dumps(report, indent=2))
    click.echo(format_table(report))
    file_scores: Any = report.get("model_file_only")
    if file_scores is not None:
        file_only = file_scores["eta_benchmark"]["overall"]
        click.echo(f"model without online re-selection (the model file's choice alone): {100 * file_only:.1f}%")
    for part in ("current_trips", "next_trips"):
        if part in report:
            inferred = " (inferred blocks)" if part == "next_trips" and report.get("blocks") == "inferred" else ""
            click.echo(f"{part.replace('_', ' ')}{inferred} only:")
            click.echo(format_table({"predictors": report[part]}))
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

    from prediction.eta.artifacts import save_model
    from prediction.eta.backtest import training_set
    from prediction.eta.models import QuantileETAModel

    # make demo's longest quiet minutes: a bar over the three phases, each step saying what it just finished
    with Progress("training", 3) as bar:
        net, known = _history(gtfs, (*pings, *more))
        bar.step(f"{len(known.known_at)} stop events from the pings")
        cutoff = _epoch(_iso(train_until)) if train_until else float(known.known_at.max()) + 1.0
        training = training_set(net, known, cutoff)
        bar.step(f"training set of {len(training.rows)} rows")
        model = QuantileETAModel().fit(training.rows, training.target)
        bar.step("quantile model fitted")
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

    from prediction.eta.artifacts import load_predictor
    from prediction.eta.backtest import format_table, replay
    from prediction.eta.features import FEATURES
    from prediction.eta.metrics import score_predictions
    from prediction.eta.models import BASELINES

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
    from prediction.eta.artifacts import list_models

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
