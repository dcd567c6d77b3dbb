"""Stop search that forgives: every name of every stop, folded (``app.schedule.folding``), in an in-memory index.

The index is built once per feed version and process (``StopSearchCache``) and searched in Python, so SQLite and
PostgreSQL answer identically and no database extension (pg_trgm) is needed. A stop matches when each word of the
query matches a word of one of its names (the feed's name, its translations, its code). Ranked best first:

    exact      the whole query is one of the stop's names          "Зелёный базар" for Зеленый базар
    prefix     a name starts with the query (spaces ignored)       "Абая – Назарбаева" for "абай", "alfarabi"
    word       each query word starts a word of a name, or the     "Абая – Абылай хана" for "абылай хан"
               query starts at a word (spaces ignored)
    substring  each query word sits inside a name                  "КазНУ им. аль-Фараби" for "фараби"
    fuzzy      each query word is a small typo away from one       "Abay" for "Abya"

then by how far the words are from the names, by popularity (trips calling, a station counting its platforms), by
the length of the name, and by name. Fuzzy matches are answered only when nothing matches better — a typo's
neighbours would crowd a list that already holds the stop — and they come with ``suggestions``: the query
respelled as the matched names write it ("did you mean Abay?").
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import BadRequest
from app.models import Stop, StopTime, Translation
from app.schedule.folding import FoldedWord, fold_text, is_cyrillic, stem

__all__ = [
    "MATCH_KINDS",
    "SearchAnswer",
    "StopIndex",
    "StopNames",
    "StopSearchCache",
    "edit_distance",
    "load_stop_names",
    "stop_search_cache",
]

MATCH_KINDS = ("exact", "prefix", "word", "substring", "fuzzy")
EXACT, PREFIX, WORD, SUBSTRING, FUZZY = range(len(MATCH_KINDS))
# per-word costs: the word itself, a word it begins, its stem begins a word, inside a word, then 3 + typos
_SAME, _BEGINS, _STEM, _INSIDE, _TYPO = 0.0, 0.5, 1.0, 2.0, 3.0
_OTHER_SCRIPT = 0.01  # a tie between Абай and Abay goes to the spelling in the query's own script
SUGGESTIONS = 3
SEARCHABLE_LOCATION_TYPES = (0, 1)  # stops and stations; entrances, nodes and boarding areas are not searched


def max_typos(key: str) -> int:
    """Typos forgiven in a word: none in short words and numbers (route 12 is not route 13), 1 up to 6 letters."""
    if len(key) < 4 or any(c.isdigit() for c in key):
        return 0
    return 1 if len(key) <= 6 else 2


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap two neighbours); ``limit + 1`` if over."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            best = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, before[j - 2] + 1)
            current[j] = best
        if min(current) > limit:
            return limit + 1
        before, row = row, current
    return row[-1]


def _deletions(key: str, depth: int) -> set[str]:
    """``key`` with up to ``depth`` letters left out (symmetric-delete candidates for the typo search)."""
    found = {key}
    for n in range(1, min(depth, len(key) - 1) + 1):
        found.update("".join(key[i] for i in range(len(key)) if i not in gone)
                     for gone in combinations(range(len(key)), n))
    return found


@dataclass(frozen=True)
class StopNames:
    """What a stop can be found by: its names in every language (the feed's own first), code and popularity."""

    stop_id: str
    names: tuple[str, ...]
    code: str | None = None
    popularity: int = 0


@dataclass(frozen=True)
class SearchAnswer:
    """Matching stop ids best first, how each matched (``MATCH_KINDS``), and respelled queries to offer."""

    stop_ids: list[str]
    kinds: dict[str, str]
    suggestions: list[str] = field(default_factory=list)


class _Hit(NamedTuple):
    """A matching stop; hits sort best first: by kind, word costs, busier, shorter name, name, position."""

    kind: int
    cost: float
    minus_popularity: int
    name_length: int
    name: str
    stop: int


@dataclass(frozen=True)
class _WordMatch:
    cost: float
    key: str


class StopIndex:
    """Every stop's folded names; ``search`` ranks the stops for a query (see the module docstring)."""

    def __init__(self, stops: Iterable[StopNames]) -> None:
        self.stops = list(stops)
        tails: list[tuple[str, int, int]] = []  # (a name from one of its words on, squeezed; stop; word)
        self._postings: dict[str, set[int]] = defaultdict(set)
        surfaces: dict[str, Counter[str]] = defaultdict(Counter)
        for i, stop in enumerate(self.stops):
            variants = [fold_text(name) for name in stop.names if name]
            if stop.code:
                variants.append(fold_text(stop.code))
            for words in variants:
                tails.extend(("".join(w.key for w in words[n:]), i, n) for n in range(len(words)))
            for word in (w for words in variants for w in words):
                self._postings[word.key].add(i)
                surfaces[word.key][word.surface] += 1
        self._surfaces = {key: [s for s, _ in counts.most_common()] for key, counts in surfaces.items()}
        self._scripts = {key: {is_cyrillic(s) for s in written} for key, written in self._surfaces.items()}
        tails.sort()
        self._tails = [tail for tail, _, _ in tails]
        self._tail_stops = [(i, n) for _, i, n in tails]
        self._keys = sorted(self._postings)
        self._words = [key for key in self._keys if not any(c.isdigit() for c in key)]  # stop codes left out
        self._typos: dict[str, set[str]] = defaultdict(set)
        for key in self._keys:
            for deleted in _deletions(key, max_typos(key)):
                self._typos[deleted].add(key)

    def __len__(self) -> int:
        return len(self.stops)

    def search(self, q: str) -> SearchAnswer:
        """All stops matching ``q``, best first; ``BadRequest`` (field ``q``) when it has no letters or digits."""
        words = fold_text(q)
        if not words:
            raise BadRequest("q must contain letters or digits", field="q")
        per_word = [self._stops_matching(word) for word in words]
        hits = self._rank(words, per_word)
        if hits and hits[0].kind < FUZZY:
            hits = [hit for hit in hits if hit.kind < FUZZY]
            suggestions: list[str] = []
        else:
            suggestions = self._suggestions(words, per_word, [hit.stop for hit in hits])
        ids = [self.stops[hit.stop].stop_id for hit in hits]
        kinds = {self.stops[hit.stop].stop_id: MATCH_KINDS[hit.kind] for hit in hits}
        return SearchAnswer(ids, kinds, suggestions)

    # --- one word ---------------------------------------------------------------------------------

    def _stops_matching(self, word: FoldedWord) -> dict[int, _WordMatch]:
        """``{stop: best match}`` for one query word over every indexed word."""
        cyrillic = is_cyrillic(word.surface)
        best: dict[int, _WordMatch] = {}
        for key, cost in self._keys_matching(word.key).items():
            if cyrillic not in self._scripts[key]:
                cost += _OTHER_SCRIPT
            for i in self._postings[key]:
                found = best.get(i)
                if found is None or cost < found.cost:
                    best[i] = _WordMatch(cost, key)
        return best

    def _keys_matching(self, key: str) -> dict[str, float]:
        costs: dict[str, float] = {}
        for candidate, cost in self._graded_keys(key):
            if cost < costs.get(candidate, _TYPO + 10):
                costs[candidate] = cost
        return costs

    def _graded_keys(self, key: str) -> Iterator[tuple[str, float]]:
        for found in self._starting_with(key):
            yield found, _SAME if found == key else _BEGINS
        stemmed = stem(key)
        if stemmed != key:
            yield from ((found, _STEM) for found in self._starting_with(stemmed))
        yield from ((found, _INSIDE) for found in self._words if key in found and not found.startswith(key))
        limit = max_typos(key)
        if limit:
            candidates = {k for d in _deletions(key, limit) for k in self._typos.get(d, ())}
            for candidate in candidates:
                distance = edit_distance(key, candidate, limit)
                if distance <= limit:
                    yield candidate, _TYPO + distance

    def _starting_with(self, prefix: str) -> Iterator[str]:
        for position in range(bisect.bisect_left(self._keys, prefix), len(self._keys)):
            if not self._keys[position].startswith(prefix):
                return
            yield self._keys[position]

    # --- whole query --------------------------------------------------------------------------------

    def _rank(self, words: list[FoldedWord], per_word: list[dict[int, _WordMatch]]) -> list[_Hit]:
        whole = self._whole_name_kinds("".join(w.key for w in words))
        every = set.intersection(*(set(found) for found in per_word))
        hits = []
        for i in every | set(whole):
            costs = [found[i].cost for found in per_word] if i in every else [_TYPO + 10]
            kind = min(whole.get(i, FUZZY), _kind_of(max(costs)))
            stop = self.stops[i]
            name = stop.names[0] if stop.names else ""
            hits.append(_Hit(kind, 0.0 if i in whole else sum(costs), -stop.popularity, len(name), name, i))
        hits.sort()
        return hits

    def _whole_name_kinds(self, compact: str) -> dict[int, int]:
        """Stops with a name that is, begins with, or from one of its words on begins with the query, spaces and
        dashes left out ("alfarabi" finds "Аль-Фараби – Саина" and "КазНУ им. аль-Фараби")."""
        kinds: dict[int, int] = {}
        start = bisect.bisect_left(self._tails, compact)
        for position in range(start, len(self._tails)):
            tail = self._tails[position]
            if not tail.startswith(compact):
                break
            i, word = self._tail_stops[position]
            kind = WORD if word else EXACT if tail == compact else PREFIX
            kinds[i] = min(kind, kinds.get(i, WORD))
        return kinds

    def _suggestions(self, words: list[FoldedWord], per_word: list[dict[int, _WordMatch]],
                     ranked: Sequence[int]) -> list[str]:
        """The query respelled as the best fuzzy matches write it, each offered once."""
        offered: list[str] = []
        for i in ranked[:SUGGESTIONS * 10]:
            respelled = " ".join(self._spelling(word, found[i]) for word, found in zip(words, per_word, strict=True))
            if respelled.casefold() not in {o.casefold() for o in offered}:
                offered.append(respelled)
            if len(offered) == SUGGESTIONS:
                break
        return offered

    def _spelling(self, word: FoldedWord, match: _WordMatch) -> str:
        """The rider's own word unless it was a typo; then the indexed word as written in the rider's script."""
        if match.cost < _TYPO:
            return word.surface
        written = self._surfaces[match.key]
        cyrillic = is_cyrillic(word.surface)
        return next((s for s in written if is_cyrillic(s) == cyrillic), written[0])


def _kind_of(worst_word_cost: float) -> int:
    if worst_word_cost < _INSIDE:
        return WORD
    return SUBSTRING if worst_word_cost < _TYPO else FUZZY


# --- the index of the active feed ------------------------------------------------------------------


def load_stop_names(session: Session, feed_id: int) -> list[StopNames]:
    """Every searchable stop of a feed version with all its translated names and the trips calling there."""
    rows = session.execute(
        select(Stop.stop_id, Stop.stop_name, Stop.stop_code, Stop.parent_station)
        .where(Stop.feed_version_id == feed_id, Stop.location_type.in_(SEARCHABLE_LOCATION_TYPES))
        .order_by(Stop.stop_id)
    ).all()
    by_id: dict[str, list[str]] = defaultdict(list)
    by_name: dict[str, list[str]] = defaultdict(list)
    for record_id, value, text in session.execute(
        select(Translation.record_id, Translation.field_value, Translation.translation).where(
            Translation.feed_version_id == feed_id, Translation.table_name == "stops",
            Translation.field_name == "stop_name")
    ):
        (by_id[record_id] if record_id is not None else by_name[value or ""]).append(text)
    calls = _calls_per_stop(session, feed_id, {stop_id: parent for stop_id, _, _, parent in rows})
    return [
        StopNames(stop_id, tuple(dict.fromkeys([name or "", *by_id.get(stop_id, []), *by_name.get(name or "", [])])),
                  code, calls.get(stop_id, 0))
        for stop_id, name, code, _ in rows
    ]


def _calls_per_stop(session: Session, feed_id: int, parents: dict[str, str | None]) -> Counter[str]:
    """Stop times per stop; a station counts the calls at its platforms."""
    calls: Counter[str] = Counter()
    for stop_id, n in session.execute(
        select(StopTime.stop_id, func.count()).where(StopTime.feed_version_id == feed_id).group_by(StopTime.stop_id)
    ):
        calls[stop_id] += n
        parent = parents.get(stop_id)
        if parent:
            calls[parent] += n
    return calls


class StopSearchCache:
    """The active feed version's ``StopIndex``, rebuilt when another version becomes active (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: tuple[tuple[int, Any], StopIndex] | None = None

    def index(self, session: Session, feed_id: int, activated_at: Any = None) -> StopIndex:
        """The index of feed version ``feed_id`` (activated at ``activated_at``: a re-activation rebuilds it)."""
        version = (feed_id, activated_at)
        built = self._built
        if built is not None and built[0] == version:
            return built[1]
        with self._lock:
            if self._built is None or self._built[0] != version:
                self._built = (version, StopIndex(load_stop_names(session, feed_id)))
            return self._built[1]


def stop_search_cache(extensions: dict[str, Any]) -> StopSearchCache:
    """The application's cache, kept in ``app.extensions["stop_search"]`` and created on first use."""
    cache = extensions.get("stop_search")
    if cache is None:
        cache = extensions.setdefault("stop_search", StopSearchCache())
    assert isinstance(cache, StopSearchCache)
    return cache
