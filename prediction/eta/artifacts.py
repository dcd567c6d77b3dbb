"""Versioned model files: ``model-<UTC stamp>.joblib`` plus a ``.json`` with what it was trained on and how
well it did; and loading the newest good one, falling back to a baseline when there is none or it will not load.

Errors: ``ArtifactError`` (a file that cannot be used) — ``load_predictor`` catches it per file and falls back.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped]
import numpy as np
import pandas as pd
import sklearn
from sklearn.base import BaseEstimator

from prediction.eta.features import FEATURES, SegmentHistory
from prediction.eta.models import DeviationBaseline, QuantileETAModel

__all__ = ["FORMAT_VERSION", "ArtifactError", "LoadedPredictor", "list_models", "load_predictor", "save_model"]

# 2: trip/route pace and next-trip features, calibrated interval; 3: one median booster + conformal interval;
# 4: out-of-fold selection among the booster and the baselines, interval per selection group
FORMAT_VERSION = 5  # 5: the classes moved to prediction.eta (older pickles name prediction.models)
FALLBACK_BASELINE = "deviation"  # the best baseline that needs no fitted state (kalman needs segment history)


class ArtifactError(Exception):
    """A model file or its metadata is missing, unreadable, or from an incompatible version."""


def library_versions() -> dict[str, str]:
    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__, "numpy": np.__version__,
            "pandas": pd.__version__}


def save_model(folder: Path, model: QuantileETAModel, history: SegmentHistory, *, train_from: str,
               train_until: str, feed_source: str, feed_sha256: str, metrics: dict[str, Any] | None = None,
               now: dt.datetime | None = None) -> Path:
    """Write the model and its segment history with metadata; returns the ``.joblib`` path."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"model-{stamp}.joblib"
    joblib.dump({"model": model, "history": history}, path)
    meta = {
        "format_version": FORMAT_VERSION, "created_at": stamp, "file": path.name,
        "training_window": {"from": train_from, "until": train_until},
        "feed": {"source": feed_source, "sha256": feed_sha256}, "features": list(FEATURES),
        "params": model.get_params(), "interval_offsets": model.interval_offsets_.tolist(),
        "interval_calibrated": model.calibrated_, "selection": model.selection_table(),
        "metrics": metrics or {}, "libraries": library_versions(),
    }
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2, default=str))
    return path


def list_models(folder: Path) -> list[dict[str, Any]]:
    """Metadata of every model in ``folder``, newest first (unreadable metadata is listed with an ``error``)."""
    out = []
    for path in sorted(folder.glob("model-*.joblib"), reverse=True):
        try:
            out.append(_metadata(path))
        except ArtifactError as exc:
            out.append({"file": path.name, "error": str(exc)})
    return out


def _metadata(path: Path) -> dict[str, Any]:
    try:
        meta: dict[str, Any] = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path.name}: metadata unreadable ({exc})") from exc
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path.name}: format {meta.get('format_version')}, expected {FORMAT_VERSION}")
    if meta.get("features") != list(FEATURES):
        raise ArtifactError(f"{path.name}: trained on other features")
    return meta


def _load(path: Path, feed_sha256: str | None) -> LoadedPredictor:
    meta = _metadata(path)
    if feed_sha256 is not None and meta["feed"]["sha256"] != feed_sha256:
        raise ArtifactError(f"{path.name}: trained on another feed version")
    trained_with = meta["libraries"]["scikit-learn"].split(".")[:2]
    if trained_with != sklearn.__version__.split(".")[:2]:
        raise ArtifactError(f"{path.name}: scikit-learn {meta['libraries']['scikit-learn']}, "
                            f"running {sklearn.__version__}")
    try:
        payload = joblib.load(path)
    except Exception as exc:  # unpickling raises anything from EOFError to AttributeError
        raise ArtifactError(f"{path.name}: cannot load ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), QuantileETAModel) \
            or not isinstance(payload.get("history"), SegmentHistory):
        raise ArtifactError(f"{path.name}: not a Qala model file")
    return LoadedPredictor(name="model", estimator=payload["model"], history=payload["history"], metadata=meta)


@dataclass
class LoadedPredictor:
    """What the service predicts with: the model, or the fallback baseline and why."""

    name: str
    estimator: BaseEstimator
    history: SegmentHistory | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def load_predictor(folder: Path, *, feed_sha256: str | None = None) -> LoadedPredictor:
    """The newest model in ``folder`` that loads (and fits ``feed_sha256`` when given), else the baseline."""
    skipped = []
    for path in sorted(folder.glob("model-*.joblib"), reverse=True) if folder.is_dir() else []:
        try:
            loaded = _load(path, feed_sha256)
        except ArtifactError as exc:
            skipped.append(str(exc))
            continue
        loaded.skipped = skipped
        return loaded
    fallback = DeviationBaseline().fit(pd.DataFrame(columns=list(FEATURES)))
    return LoadedPredictor(name=FALLBACK_BASELINE, estimator=fallback, skipped=skipped)
