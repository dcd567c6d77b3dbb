"""Online re-selection: every hour the production predictor re-chooses, per group of rows, among its own estimate,
the baselines and their blends, from the arrivals the service itself has observed since it started.

The model file's selection (``QuantileETAModel.selection_``) is made once, on history. A new city has none (the
model is OneBusAway's deviation until then), and a city with a few hours of history has too few next-trip rows
to choose well; both then serve for days what was guessed at training. Here the service keeps a sample of what it
predicted (each arrival's estimates at most once per ``sample_s``: the production estimate and every baseline's),
scores it when the arrival is observed under the ETA Accuracy Benchmark's windows, and at each hour's refresh
serves, in every group with at least ``min_rows`` scored rows, the candidate and offset with the most hits —
the production estimate unchanged unless another one beat it. Older evidence fades by ``decay`` an hour, so a
change in the city (a new timetable, a detour) is followed within a day.

The worker (``app/worker/predict.py``) and the backtest (``prediction/eta/backtest.py``) drive the same object in the
same order: at an hour's start ``refresh``, then for the predictions of the hour ``apply`` and ``record``, and
``observe`` for the arrivals as they become known. The selection starts empty whenever the service starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from prediction.eta.models import (
    BASELINES,
    BLENDED,
    CANDIDATES,
    OFFSETS_S,
    group_count,
    groups_of,
    hits_by_offset,
    stack_candidates,
)

__all__ = ["ONLINE_CANDIDATES", "OnlineSelection", "arrival_keys", "candidate_etas", "etas_from_baselines", "groups_of"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# the same names as the model's candidates; "model" is the production estimate as the model file serves it
ONLINE_CANDIDATES = CANDIDATES


def arrival_keys(origin: FloatArray, visit: IntArray, visits: int) -> IntArray:
    """One integer per (service day, stop visit): the hour of the day's GTFS time 0 × ``visits`` + visit."""
    return np.rint(np.asarray(origin, dtype=float) / 3600.0).astype(np.int64) * visits + np.asarray(visit, np.int64)


def candidate_etas(rows: pd.DataFrame, production: FloatArray) -> FloatArray:
    """ETA (s) of every online candidate for snapshot ``rows``, shape (candidates, rows)."""
    return stack_candidates(production, [BASELINES[name]()._eta(rows) for name in BLENDED])


def etas_from_baselines(production: FloatArray, baselines: dict[str, FloatArray]) -> FloatArray:
    """The same stack from already computed baseline ETAs (the backtest has them as columns)."""
    return stack_candidates(production, [baselines[name] for name in BLENDED])


@dataclass
class _Pending:
    key: IntArray
    made_at: FloatArray
    group: IntArray
    eta: FloatArray  # (candidates, rows)

    def take(self, mask: BoolArray) -> _Pending:
        return _Pending(self.key[mask], self.made_at[mask], self.group[mask], self.eta[:, mask])


@dataclass
class OnlineSelection:
    """Per group: the candidate (index into ``ONLINE_CANDIDATES``; −1: the production estimate as it is) and the
    offset served until the next refresh, and the faded hit counts they were chosen from."""

    every_s: float = 3600.0
    sample_s: float = 120.0
    min_rows: float = 300.0
    margin: float = 0.02
    decay: float = 0.9
    keep_s: float = 7200.0
    choice: IntArray = field(default_factory=lambda: np.full(group_count(), -1, dtype=np.int64))
    offset: FloatArray = field(default_factory=lambda: np.zeros(group_count()))
    rows: FloatArray = field(default_factory=lambda: np.zeros(group_count()))
    hits: FloatArray = field(default_factory=lambda: np.zeros((group_count(), len(ONLINE_CANDIDATES),
                                                                len(OFFSETS_S))))
    _pending: list[_Pending] = field(default_factory=list)
    _next_refresh: float = -np.inf
    _last_record: float = -np.inf

    # --- serving ------------------------------------------------------------------------------------------------
    def active(self) -> bool:
        return bool((self.choice >= 0).any())

    def due(self, now: float) -> bool:
        """Whether ``record`` would keep rows made at ``now``."""
        return now - self._last_record >= self.sample_s

    def apply(self, group: IntArray, eta: FloatArray) -> FloatArray:
        """The served ETA (s) per row: ``eta`` (candidates × rows, from ``candidate_etas``) of the group's
        current choice plus its offset; the production estimate where the group has no choice."""
        chosen = self.choice[group]
        out = eta[0].copy()
        switched = chosen >= 0
        if switched.any():
            picked = eta[chosen[switched], np.flatnonzero(switched)] + self.offset[group[switched]]
            out[switched] = np.where(np.isfinite(picked), picked, out[switched])
        estimate: FloatArray = np.maximum(out, 0.0)
        return estimate

    # --- learning -----------------------------------------------------------------------------------------------
    def record(self, now: float, key: IntArray, group: IntArray, eta: FloatArray, made_at: FloatArray | None = None,
               *, force: bool = False) -> int:
        """Keep the candidates' ETAs of these rows until their arrivals are observed (at most once per
        ``sample_s``: a cycle's rows are taken whole or not at all, unless ``force``). Returns rows kept."""
        if not force and not self.due(now):
            return 0
        self._last_record = now
        made = np.full(len(key), now) if made_at is None else np.asarray(made_at, dtype=float)
        near = eta[0] < 1800.0  # the benchmark looks 15 min ahead: further rows would only cost memory
        if near.any():
            self._pending.append(_Pending(np.asarray(key, np.int64)[near], made[near],
                                          np.asarray(group, np.int64)[near], eta[:, near]))
        return int(near.sum())

    def observe(self, key: IntArray, arrival: FloatArray) -> int:
        """Score the kept rows of these observed arrivals (epoch s) and forget them; returns rows scored."""
        if not self._pending or not len(key):
            return 0
        index = pd.Series(np.asarray(arrival, dtype=float), index=np.asarray(key, np.int64))
        index = index[~index.index.duplicated(keep="first")]
        scored, kept = 0, []
        for chunk in self._pending:
            at = index.reindex(chunk.key).to_numpy(float)
            found = np.isfinite(at)
            if found.any():
                scored += self._score(chunk, found, at[found])
                if not found.all():
                    kept.append(chunk.take(~found))
            else:
                kept.append(chunk)
        self._pending = kept
        return scored

    def _score(self, chunk: _Pending, found: BoolArray, arrival: FloatArray) -> int:
        to_actual = arrival - chunk.made_at[found]
        ahead = to_actual >= 0.0  # a row made after its bus arrived predicted nothing a rider could use
        if not ahead.any():
            return 0
        group = chunk.group[found][ahead]
        to_actual = to_actual[ahead]
        eta = chunk.eta[:, found][:, ahead]
        onehot = np.zeros((len(group), len(self.rows)))
        onehot[np.arange(len(group)), group] = 1.0
        self.rows += onehot.sum(axis=0)
        for c in range(len(eta)):
            self.hits[:, c, :] += (hits_by_offset(eta[c], to_actual) @ onehot).T
        return len(group)

    def refresh(self, now: float) -> bool:
        """At most every ``every_s``: choose per group from the counts, fade them, drop rows kept too long."""
        if now < self._next_refresh:
            return False
        self._next_refresh = now + self.every_s
        for g in range(len(self.rows)):
            if self.rows[g] < self.min_rows:
                self.choice[g], self.offset[g] = -1, 0.0
                continue
            table = self.hits[g]
            c = int(np.argmax(table.max(axis=1)))
            tied = np.flatnonzero(table[c] >= table[c].max() - 1e-9)
            k = int(tied[len(tied) // 2])  # the middle of a band of equally good offsets, not its edge
            unchanged = table[0, int(np.flatnonzero(OFFSETS_S == 0.0)[0])]
            if table[c, k] > unchanged + self.margin * self.rows[g]:
                self.choice[g], self.offset[g] = int(c), float(OFFSETS_S[k])
            else:
                self.choice[g], self.offset[g] = -1, 0.0
        self.rows *= self.decay
        self.hits *= self.decay
        self._pending = [p for p in (_keep_recent(p, now - self.keep_s) for p in self._pending) if p is not None]
        return True

    def table(self) -> list[dict[str, object]]:
        """What each group serves now, for logs and the backtest report."""
        return [{"group": g, "uses": "model" if c < 0 else ONLINE_CANDIDATES[int(c)], "offset_s": float(o),
                 "scored_rows": round(float(n), 1)}
                for g, (c, o, n) in enumerate(zip(self.choice, self.offset, self.rows, strict=True))]


def _keep_recent(chunk: _Pending, since: float) -> _Pending | None:
    keep = chunk.made_at >= since
    if not keep.any():
        return None
    return chunk if keep.all() else chunk.take(keep)
