"""Group work that concurrent threads of one process submit at the same time (leader/follower group commit).

A thread that submits an item while no group is running becomes the leader: it takes every item waiting
(up to ``max_items``), runs them with one call, hands each submitter its own result, and — if items arrived
meanwhile — makes the first of their submitters the next leader before returning. Nobody waits on a timer:
at low load a group is one item and costs what a direct call costs; under load the items that arrive while
one group is in flight (its database round trip and commit) go together in the next, so round trips and
commits per second stop bounding items per second.

``run`` gets the items and returns one result per item, in order. If it raises, every submitter of the
group gets that exception (callers choose how to recover; the online tap falls back to its general path).
"""

from __future__ import annotations

import threading
from _thread import allocate_lock
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Coalescer"]

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[T, R]):
    __slots__ = ("done", "error", "item", "lead", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = allocate_lock()  # held until the slot's outcome is set (cheaper than an Event)
        self.done.acquire()
        self.lead = False
        self.result: R | None = None
        self.error: BaseException | None = None


class Coalescer(Generic[T, R]):
    """``submit(item)`` returns ``run([... item ...])``'s result for that item; concurrent submits share a call."""

    def __init__(self, run: Callable[[list[T]], Sequence[R]], max_items: int = 64) -> None:
        self._run = run
        self.max_items = max_items
        self._lock = threading.Lock()
        self._waiting: list[_Slot[T, R]] = []
        self._busy = False
        self.groups = 0  # how many calls of ``run`` were made (tests and benchmarks read it)
        self.items = 0

    def submit(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._waiting.append(slot)
            lead = not self._busy
            self._busy = True
        if not lead:
            slot.done.acquire()
            if not slot.lead:
                return self._outcome(slot)
        self._lead()
        return self._outcome(slot)

    @staticmethod
    def _outcome(slot: _Slot[T, R]) -> R:
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _lead(self) -> None:
        """Run one group (which includes the leader's own item), then pass the lead on or go idle."""
        with self._lock:
            group, self._waiting = self._waiting[:self.max_items], self._waiting[self.max_items:]
        try:
            results = self._run([s.item for s in group])
            if len(results) != len(group):
                raise RuntimeError(f"a group of {len(group)} items got {len(results)} results")
        except BaseException as exc:  # every submitter of the group learns of the failure
            for s in group:
                s.error = exc
        else:
            for s, result in zip(group, results, strict=True):
                s.result = result
        with self._lock:
            self.groups += 1
            self.items += len(group)
            if self._waiting:
                nxt = self._waiting[0]
                nxt.lead = True
                nxt.done.release()
            else:
                self._busy = False
        for s in group:  # every slot's lock is held here (the leader's own too), so each is released once
            s.done.release()
