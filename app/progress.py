"""Progress of a long CLI job, fed by the job's real steps (days simulated, phases done).

On a terminal it is one line redrawn in place — ``simulating days [#####-----] 3/6 2026-03-04: …`` — so that
``make demo`` shows movement without scrolling; into a pipe or a log (CI, ``qala … 2> file``) every step is one
plain line, because a redrawn line would arrive there as one unreadable run of carriage returns.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO

__all__ = ["Progress"]

BAR_WIDTH = 24


class Progress:
    """``with Progress("label", total) as bar: bar.step("what was just done")``."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()

    def step(self, note: str = "") -> None:
        self.done = min(self.done + 1, self.total)
        if self.live:
            filled = BAR_WIDTH * self.done // self.total
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            self.stream.write(f"\r\x1b[K{self.label} [{bar}] {self.done}/{self.total} {note}")
        else:
            self.stream.write(f"{self.label} {self.done}/{self.total}: {note}\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.live and self.done:
            self.stream.write("\n")
            self.stream.flush()
