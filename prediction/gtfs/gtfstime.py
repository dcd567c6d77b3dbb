"""GTFS times of day as integer seconds since "noon minus 12 h" of the service day.

``25:10:00`` is 90600: times past 24:00 belong to the previous service day and are kept as they are.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["MISSING", "format_gtfs_time", "parse_gtfs_time", "parse_gtfs_times"]

MISSING = -1
_TIME_RE = r"^\s*([0-9]{1,3}):([0-5][0-9]):([0-5][0-9])\s*$"


def parse_gtfs_time(text: str) -> int:
    """Parse one ``H:MM:SS`` time; raise ``ValueError`` naming the bad text."""
    match = re.fullmatch(_TIME_RE, text)
    if match is None:
        raise ValueError(f"{text!r} is not a GTFS time (H:MM:SS)")
    h, m, s = (int(g) for g in match.groups())
    return h * 3600 + m * 60 + s


def parse_gtfs_times(values: pd.Series) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Parse a column of GTFS times.

    Returns ``(seconds, bad)``: seconds with ``MISSING`` for empty cells, and a mask of cells that
    hold text that is not a valid time (also ``MISSING`` in ``seconds``).
    """
    text = values.astype(object).where(values.notna(), "").to_numpy(dtype="U12")
    seconds = np.full(len(text), MISSING, dtype=np.int64)
    done = _parse_fixed_width(text, seconds)
    rest = np.flatnonzero(~done)
    bad = np.zeros(len(text), dtype=bool)
    if len(rest):
        # the slow path: padded, unusual or empty cells
        parts = pd.Series(text[rest], dtype="string").str.extract(_TIME_RE)
        ok = parts[0].notna().to_numpy(dtype=bool)
        good = rest[ok]
        seconds[good] = (
            parts[0][ok].astype("int64").to_numpy() * 3600
            + parts[1][ok].astype("int64").to_numpy() * 60
            + parts[2][ok].astype("int64").to_numpy()
        )
        empty = np.char.strip(text[rest]) == ""
        bad[rest[~ok & ~empty]] = True
    return seconds, bad


def _parse_fixed_width(text: npt.NDArray[np.str_], seconds: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Vectorised parse of the common shapes ``H:MM:SS``, ``HH:MM:SS``, ``HHH:MM:SS``; marks what it parsed."""
    wide = text.view(np.uint32).reshape(len(text), -1)
    length = (wide != 0).sum(axis=1)
    # non-ASCII characters become 0xFFFF, which no digit or colon test accepts
    codes = np.minimum(wide, 0xFFFF).astype(np.int32)
    done = np.zeros(len(text), dtype=bool)
    for width in (7, 8, 9):
        rows = np.flatnonzero(length == width)
        if not len(rows):
            continue
        c = codes[rows, :width]
        colon = (c[:, width - 6] == 58) & (c[:, width - 3] == 58)
        digit_cols = [i for i in range(width) if i not in (width - 6, width - 3)]
        d = c[:, digit_cols] - 48
        digits = ((d >= 0) & (d <= 9)).all(axis=1)
        hours = np.zeros(len(rows), dtype=np.int64)
        for i in range(width - 6):
            hours = hours * 10 + d[:, i]
        minutes = d[:, -4] * 10 + d[:, -3]
        secs = d[:, -2] * 10 + d[:, -1]
        ok = colon & digits & (minutes < 60) & (secs < 60)
        seconds[rows[ok]] = hours[ok] * 3600 + minutes[ok].astype(np.int64) * 60 + secs[ok]
        done[rows[ok]] = True
    return done


def format_gtfs_time(seconds: int) -> str:
    """``90600 -> "25:10:00"``."""
    h, rem = divmod(int(seconds), 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{s:02d}"
