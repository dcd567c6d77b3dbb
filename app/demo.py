"""``qala demo``: the whole system on one machine — migrate, import the Almaty demo feed, simulate a little history,
train a model, then serve the web app and run the worker with the simulated city streaming live (buses through
the AVL ingest, riders tapping demo cards), until Ctrl-C stops every process.

The supervisor runs each step as its own ``qala`` command and the two long-running parts as child processes,
each in a process group of its own, so stopping the demo (Ctrl-C, SIGTERM, or one part dying) ends them all.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
import pandas as pd
from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Vehicle

__all__ = ["DemoTaps", "daytime_feed", "demo_command", "register_vehicles"]

log = logging.getLogger(__name__)

DEMO_CARDS = 200
DEMO_BALANCE_TIYN = 500_000  # 5,000 ₸ per demo card


def register_vehicles(session: Session, vehicle_ids: Sequence[str]) -> int:
    """Register the buses that will send pings (the ingest rejects unknown vehicles once any is registered)."""
    known = set(session.scalars(select(Vehicle.id)))
    new = [v for v in vehicle_ids if v not in known]
    session.add_all(Vehicle(id=v, label=f"simulated {v}", active=True) for v in new)
    session.commit()
    return len(new)


@dataclass
class DemoTaps:
    """Simulated riders tapping: each simulated card maps onto one of the demo cards, taps go through the
    ticketing service on a registered demo validator (fare rules, ledger and deny list all apply)."""

    app: Flask
    city: Any
    device_id: str
    numbers: list[str]
    seq: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def prepare(cls, app: Any, city: Any) -> DemoTaps:
        from app.extensions import get_db
        from app.ticketing.cards import issue_card, top_up
        from app.ticketing.context import get_ticketing
        from app.ticketing.devices import register_device

        ctx = get_ticketing(app)
        with get_db(app).session() as session:
            try:
                creds = register_device(session, "demo validators", ctx.keys)
            except TypeError:  # an older signature without the key box
                creds = register_device(session, "demo validators")  # type: ignore[call-arg]
            numbers = []
            for _ in range(DEMO_CARDS):
                card, number, _code = issue_card(session, ctx)
                top_up(session, card, DEMO_BALANCE_TIYN, "kiosk")
                numbers.append(number)
            session.commit()
        seq = int(time.time()) * 100  # device_seq grows across demo runs with the same database
        return cls(app, city, creds.device_id, numbers, seq=seq)

    def feed(self, now: float) -> None:
        """Apply the taps of the simulated riders up to ``now`` (one transaction per tap, as validators do)."""
        from app.extensions import get_db
        from app.ticketing.context import get_ticketing
        from app.ticketing.taps import TapRequest, process_tap

        taps: pd.DataFrame = self.city.taps_until(now)
        if taps.empty:
            return
        ctx = get_ticketing(self.app)
        for row in taps.itertuples(index=False):
            self.seq += 1
            number = self.numbers[zlib.crc32(str(row.card_id).encode()) % len(self.numbers)]
            at = dt.datetime.fromtimestamp(float(row.t), dt.UTC)  # type: ignore[arg-type]  # itertuples: any scalar
            body = f"{self.device_id}|{self.seq}|{row.vehicle_id}|{row.route_id}|{at.isoformat()}"
            req = TapRequest(device_id=self.device_id, device_seq=self.seq, card_number=number,
                             vehicle_id=str(row.vehicle_id), route_id=str(row.route_id), tapped_at=at, offline=False,
                             body_hash=hashlib.sha256(body.encode()).hexdigest())
            try:
                with get_db(self.app).session() as session:
                    result = process_tap(session, ctx, req)
                    session.commit()
                self.counts[result.decision] = self.counts.get(result.decision, 0) + 1
            except Exception as exc:  # the demo keeps running; the count shows what failed
                key = f"error:{type(exc).__name__}"
                if key not in self.counts:  # the first of each kind with its traceback; the rest are counted
                    log.exception("a simulated tap failed (further %s are only counted)", type(exc).__name__)
                self.counts[key] = self.counts.get(key, 0) + 1


def _qala(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("qala")), *args]


def _step(title: str, command: list[str], env: dict[str, str]) -> None:
    log.info("==> %s: %s", title, " ".join(command[1:]))
    started = time.monotonic()
    done = subprocess.run(command, env=env, check=False)
    if done.returncode != 0:
        raise click.ClickException(f"{title} failed (exit {done.returncode})")
    log.info("    %s took %.0f s", title, time.monotonic() - started)


def _history(feed: Path, folder: Path, days: int, env: dict[str, str]) -> list[Path]:
    files = sorted(folder.glob("pings_*.csv"))
    if len(files) >= days:
        log.info("==> simulated history: reusing %d days in %s", len(files), folder)
        return files
    start = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days)).isoformat()
    _step("simulate history", _qala("simulate", "--feed", str(feed), "--start", start, "--days", str(days),
                                    "--ping-interval", "20", "--pace-to-timetable", "--out", str(folder)), env)
    return sorted(folder.glob("pings_*.csv"))


SERVICE_HOURS = range(7, 22)  # local hours when the demo city's buses are surely out (first trips leave at 06:00)


def daytime_feed(feed: Path, instance: Path, now: dt.datetime) -> tuple[Path, str | None]:
    """The feed to run the demo on, and the zone it was moved to (None when unchanged).

    At night in the feed's own zone no bus runs, and a demo started then would show empty boards. So a folder feed
    whose agency time zone is at night is copied into ``instance`` with every agency moved to the fixed-offset zone
    (``Etc/GMT±N``) where it is now about noon: the same timetable, calendar and city, only its clock moved, so
    pings, predictions and boards stay consistent with each other. A zip or a daytime feed is used as it is.
    """
    agency = feed / "agency.txt"
    if not agency.is_file():
        return feed, None
    with agency.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not rows[0].get("agency_timezone"):
        return feed, None
    if now.astimezone(ZoneInfo(rows[0]["agency_timezone"])).hour in SERVICE_HOURS:
        return feed, None
    offset = (12 - now.astimezone(dt.UTC).hour + 12) % 24 - 12  # UTC+offset is about noon now, in -12..+11
    zone = "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-5 is UTC+5
    copy = instance / "demo-feeds" / f"{feed.name}-{zone.replace('/', '_')}"
    if not (copy / "agency.txt").is_file():
        staging = copy.with_name(copy.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(feed, staging)
        with (staging / "agency.txt").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({**row, "agency_timezone": zone} for row in rows)
        staging.replace(copy)
    return copy, zone


def _has_model(models: Path) -> bool:
    """A model file this version can load (an older format, from before an upgrade, is trained again)."""
    from prediction.eta.artifacts import list_models

    return any("error" not in meta for meta in list_models(models)) if models.is_dir() else False


def _wait_ready(url: str, child: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise click.ClickException("the web server exited during start-up")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise click.ClickException(f"{url} did not answer within {timeout_s:.0f} s")


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every child's process group, then SIGKILL what is still running after 10 s."""
    for child in children:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


@click.command("demo")
@click.option("--feed", type=click.Path(exists=True, path_type=Path), default=None,
              help="GTFS feed (default: the FEED_PATH setting, env QALA_FEED_PATH).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=5000, show_default=True)
@click.option("--history-days", type=click.IntRange(1, 30), default=2, show_default=True,
              help="Simulated days to train the model on (skipped when a model exists).")
@click.option("--instance", type=click.Path(file_okay=False, path_type=Path), default="instance", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--keep-time-zone", is_flag=True,
              help="Run the feed in its own time zone even at night, when no bus runs.")
def demo_command(feed: Path | None, host: str, port: int, history_days: int, instance: Path, seed: int,
                 keep_time_zone: bool) -> None:
    """Prepare everything and run the web app plus the live worker; Ctrl-C stops it all."""
    if feed is None:
        feed = Path(current_app.config["FEED_PATH"])
        if not feed.exists():
            raise click.BadParameter(f"{feed} (QALA_FEED_PATH) does not exist", param_hint="--feed")
    env = dict(os.environ)
    variant = ""
    if not keep_time_zone:
        feed, zone = daytime_feed(feed, instance, dt.datetime.now(dt.UTC))
        if zone is not None:
            variant = "-" + zone.replace("/", "_")
            log.info("==> it is night in the demo city, when its buses sleep: the demo runs the same feed on %s "
                     "(now %s) so that buses are out; --keep-time-zone keeps its own zone", zone,
                     f"{dt.datetime.now(ZoneInfo(zone)):%H:%M}")
    models = instance / f"models{variant}"  # a model is trained on one feed version: one folder per clock
    env.setdefault("QALA_MODEL_DIR", str(models))
    _step("migrate", _qala("db", "upgrade"), env)
    _step("import the demo feed", _qala("gtfs", "import", str(feed), "--if-changed"), env)
    if _has_model(models):
        log.info("==> model: using %s", sorted(models.glob("model-*.joblib"))[-1].name)
    else:
        pings = _history(feed, instance / f"demo-history{variant}", history_days, env)
        _step("train the model", _qala("model", "train", "--gtfs", str(feed), "--models", str(models),
                                       "--pings", *(str(p) for p in pings)), env)
    children: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # also when started in the background, where SIGINT is inherited ignored
    try:
        web = subprocess.Popen(_qala("run", "--host", host, "--port", str(port), "--with-threads"), env=env,
                               start_new_session=True)
        children.append(web)
        _wait_ready(f"http://{host}:{port}/readyz", web, 60)
        children.append(subprocess.Popen(_qala("worker", "--simulate", "--taps", "--seed", str(seed), "--quiet"),
                                         env=env, start_new_session=True))
        # the staff reports' rollups follow the taps, stop events and logged predictions as they arrive
        children.append(subprocess.Popen(_qala("reports", "follow", "--every", "30"), env=env,
                                         stdout=subprocess.DEVNULL, start_new_session=True))
        click.echo(f"Qala is serving on http://{host}:{port} with the simulated city live (Ctrl-C stops it)",
                   err=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        names = ("web server", "worker", "reports follower")
        failed = [name for name, c in zip(names, children, strict=False) if c.poll() is not None]
        log.error("the %s exited; stopping the rest", " and ".join(failed))
    except KeyboardInterrupt:
        log.info("stopping…")
    finally:
        _stop(children)
