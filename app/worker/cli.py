"""``qala worker``: the prediction worker loop (AVL → predictions → Redis boards, GTFS-rt, prediction log)."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click
import pandas as pd
from flask import Flask, current_app
from flask.cli import with_appcontext

if TYPE_CHECKING:  # the worker's modules are imported when the command runs, not when the CLI loads
    from app.demo import DemoTaps
    from app.worker.loop import Worker, WorkerSettings
    from app.worker.predlog import PredictionLogSampler
    from app.worker.sources import AvlPoll

__all__ = ["worker_command"]

log = logging.getLogger(__name__)


@click.command("worker")
@click.option("--shard", default="1/1", show_default=True, help="K/N: predict only the routes of shard K of N.")
@click.option("--gtfs-rt", "gtfs_rt", default=None, metavar="URL",
              help="Poll this GTFS-rt VehiclePositions URL each cycle and ingest it (default: read the AVL the "
                   "ingest stored).")
@click.option("--simulate", is_flag=True, help="Stream today's simulated city live through the AVL ingest.")
@click.option("--taps", is_flag=True, help="With --simulate: the simulated riders tap demo cards on validators.")
@click.option("--seed", type=int, default=0, show_default=True, help="Simulator seed.")
@click.option("--cycle", "cycle_s", type=click.FloatRange(0.5, 60), default=5.0, show_default=True,
              help="Seconds between cycles.")
@click.option("--cycles", type=click.IntRange(1), default=None, help="Stop after this many cycles.")
@click.option("--window", type=click.IntRange(5, 240), default=None,
              help="Board minutes ahead (default: the ARRIVALS_WINDOW_MIN setting).")
@click.option("--models", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Model folder (default: the MODEL_DIR setting, env QALA_MODEL_DIR).")
@click.option("--no-log", is_flag=True, help="Do not write the prediction log.")
@click.option("--quiet", is_flag=True, help="Print a cycle line every minute only.")
@with_appcontext
def worker_command(shard: str, gtfs_rt: str | None, simulate: bool, taps: bool, seed: int, cycle_s: float,
                   cycles: int | None, window: int | None, models: Path | None, no_log: bool, quiet: bool) -> None:
    """Predict every active trip each cycle and publish boards, GTFS-rt snapshots and a prediction-log sample."""
    from app.extensions import get_db, get_redis
    from app.worker.loop import Shard, Worker, WorkerSettings
    from app.worker.predlog import PredictionLogSampler

    try:
        parsed = Shard.parse(shard)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--shard") from exc
    if simulate and gtfs_rt:
        raise click.UsageError("choose one AVL source: --simulate or --gtfs-rt")
    if simulate and parsed.count > 1:
        raise click.UsageError("--simulate streams the whole city: run it as the only worker (--shard 1/1)")
    if taps and not simulate:
        raise click.UsageError("--taps needs --simulate")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    db = get_db(app)
    model_dir = Path(app.config["MODEL_DIR"]) if models is None else models
    sampler = None if no_log else PredictionLogSampler(db.session, on_error=_log_dropped_batch)
    settings = WorkerSettings(shard=parsed, window_min=app.config["ARRIVALS_WINDOW_MIN"] if window is None else window)
    try:
        with db.session() as session:
            worker = Worker.from_database(session, get_redis(app), model_dir, settings=settings, log=sampler)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    log.info("worker shard %s: predictor %s, %d trips", shard, worker.predictor.name, len(worker.net.trip_ids))
    source, tapper = _source(app, worker, simulate=simulate, taps=taps, gtfs_rt=gtfs_rt, seed=seed)
    # the simulator drives the network it was built on: a newly activated feed needs a restart there
    feeds = None if simulate else FeedReloader(app, model_dir, settings, sampler)
    _loop(worker, source, tapper, cycle_s=cycle_s, cycles=cycles, quiet=quiet, feeds=feeds,
          pruner=IdempotencyPruner(app))
    if sampler is not None:
        sampler.close()
        log.info("prediction log: %d rows written, %d dropped", sampler.written, sampler.failed)


def _log_dropped_batch(exc: BaseException) -> None:
    """The prediction log's writer thread dropped a batch (it is a sample: the worker goes on)."""
    log.error("prediction log: a batch was dropped", exc_info=exc)


def _source(app: Flask, worker: Worker, *, simulate: bool, taps: bool, gtfs_rt: str | None, seed: int
            ) -> tuple[AvlPoll, DemoTaps | None]:
    from app.extensions import get_db
    from app.worker.sources import DatabaseSource, IngestSource

    db = get_db(app)
    if simulate:
        from app.demo import DemoTaps, register_vehicles
        from app.worker.simstream import LiveCity

        log.info("simulating today's service…")
        city = LiveCity(worker.net, time.time(), seed=seed)
        with db.session() as session:
            added = register_vehicles(session, city.vehicle_ids())
        log.info("%d simulated buses (%d newly registered)", len(city.vehicle_ids()), added)
        tapper = DemoTaps.prepare(app, city) if taps else None
        return IngestSource(db.session, city.pings_until), tapper
    if gtfs_rt:
        from app.avl.gtfsrt import decode_vehicle_positions, fetch

        def produce(now: float) -> pd.DataFrame:
            return decode_vehicle_positions(fetch(gtfs_rt), gtfs_rt).pings

        return IngestSource(db.session, produce, source="gtfsrt"), None
    from sqlalchemy import select

    from app.models import FeedVersion

    with db.session() as session:
        feed_id = session.scalar(select(FeedVersion.id).where(FeedVersion.is_active.is_(True)))
    return DatabaseSource(db.session, int(feed_id or 0)), None


class FeedReloader:
    """Checks at most every ``every_s`` whether another feed version was activated; then builds a worker for it
    (a failed build keeps the current worker, and is retried at the next check)."""

    def __init__(self, app: Flask, models: Path, settings: WorkerSettings, log: PredictionLogSampler | None, *,
                 every_s: float = 60.0) -> None:
        self.app, self.models, self.settings, self.log, self.every_s = app, models, settings, log, every_s
        self._checked = time.monotonic()

    def check(self, worker: Worker, source: AvlPoll) -> Worker | None:
        """A worker for the newly active feed, or ``None`` to keep ``worker``."""
        from sqlalchemy import select

        from app.extensions import get_db, get_redis
        from app.models import FeedVersion
        from app.worker.loop import Worker
        from app.worker.sources import DatabaseSource

        if time.monotonic() - self._checked < self.every_s:
            return None
        self._checked = time.monotonic()
        db = get_db(self.app)
        try:
            with db.session() as session:
                active = session.scalar(select(FeedVersion.id).where(FeedVersion.is_active.is_(True)))
                if active is None or active == worker.catalog.feed_id:
                    return None
                fresh = Worker.from_database(session, get_redis(self.app), self.models, settings=self.settings,
                                             log=self.log)
        except Exception:  # the database away, a half-imported feed: keep predicting on the current one
            log.exception("feed check failed, keeping feed %s", worker.catalog.feed_id)
            return None
        if isinstance(source, DatabaseSource):
            source.feed_version_id = fresh.catalog.feed_id
        log.info("feed %s activated: predicting on it (%d trips, predictor %s)", fresh.catalog.feed_id,
                 len(fresh.net.trip_ids), fresh.predictor.name)
        return fresh


class IdempotencyPruner:
    """Deletes expired Idempotency-Key records (``IDEMPOTENCY_TTL_S``) at most every ``every_s``; a failure is
    reported and retried at the next turn. Every shard may run it: the delete is idempotent."""

    def __init__(self, app: Flask, *, every_s: float = 3600.0) -> None:
        self.app, self.every_s = app, every_s
        self._pruned: float | None = None  # the first cycle prunes

    def check(self) -> int | None:
        """The number of records deleted, or ``None`` when it was not yet time (or the delete failed)."""
        from app.api.idempotency import prune_idempotency
        from app.extensions import get_db

        if self._pruned is not None and time.monotonic() - self._pruned < self.every_s:
            return None
        self._pruned = time.monotonic()
        try:
            with get_db(self.app).session() as session:
                deleted = prune_idempotency(session, dt.datetime.now(dt.UTC),
                                            float(self.app.config["IDEMPOTENCY_TTL_S"]))
                session.commit()
        except Exception:  # the database away: the records wait for the next turn
            log.exception("idempotency prune failed; retried in %.0f s", self.every_s)
            return None
        if deleted:
            log.info("idempotency: %d expired records deleted", deleted)
        return deleted


def _loop(worker: Worker, poll: AvlPoll, tapper: DemoTaps | None, *, cycle_s: float, cycles: int | None,
          quiet: bool, feeds: FeedReloader | None = None,
          pruner: IdempotencyPruner | None = None) -> None:
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = signal.signal(signal.SIGTERM, stop)
    done, last_echo = 0, 0.0
    try:
        while not stopping and (cycles is None or done < cycles):
            started = time.time()
            fresh = feeds.check(worker, poll) if feeds is not None else None
            if fresh is not None:
                worker.flush()
                worker = fresh
            try:
                events, pings = poll.poll(started)
                report = worker.cycle(started, events, pings)
            except Exception:  # a failed cycle (database or Redis away) is retried next cycle
                log.exception("cycle failed; the next one retries")
                report = None
            if tapper is not None:
                tapper.feed(started)
            if pruner is not None:
                pruner.check()
            done += 1
            if report is not None and (not quiet or started - last_echo >= 60):
                log.info("%s", report.line())
                last_echo = started
            if cycles is not None and done >= cycles:
                break
            time.sleep(max(0.0, cycle_s - (time.time() - started)))
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        worker.flush()
