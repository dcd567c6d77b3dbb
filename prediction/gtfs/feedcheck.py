"""Validation of a GTFS feed: issues that name the file, the row (line in the file) and the field.

    FeedInvalid(Exception)    raised with every error found; ``issues`` holds them all
    FeedIssue                 one finding: severity "error" stops an import, "warning" is reported

Errors are what our own code relies on (required files and fields, parseable times, coordinates,
references between tables). The canonical MobilityData rules, run through ``gtfs-guru``, are added
as warnings unless the caller asks for them to be errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "FeedInvalid",
    "FeedIssue",
    "IssueList",
    "canonical_issues",
    "check_references",
    "check_required_columns",
    "row_number",
]

Severity = Literal["error", "warning"]
MAX_ROWS_PER_RULE = 20  # a broken column should not produce a million lines of output


@dataclass(frozen=True)
class FeedIssue:
    severity: Severity
    code: str
    message: str
    file: str | None = None
    row: int | None = None  # line number in the file; the header is line 1
    field: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.row}" if self.file and self.row else (self.file or "feed")
        column = f" [{self.field}]" if self.field else ""
        return f"{self.severity.upper()} {where}{column}: {self.message} ({self.code})".replace("  ", " ")

    def as_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "row": self.row,
            "field": self.field,
        }


class FeedInvalid(Exception):
    """The feed has errors; nothing was loaded."""

    def __init__(self, issues: list[FeedIssue]) -> None:
        self.issues = issues
        errors = [i for i in issues if i.severity == "error"]
        first = str(errors[0]) if errors else "invalid feed"
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        super().__init__(first + more)


@dataclass
class IssueList:
    """Collects issues; ``rows`` helpers cap how many rows one rule reports."""

    items: list[FeedIssue] = field(default_factory=list)

    def add(self, severity: Severity, code: str, message: str, file: str | None = None,
            row: int | None = None, field_name: str | None = None) -> None:
        self.items.append(FeedIssue(severity, code, message, file, row, field_name))

    def rows(self, severity: Severity, code: str, file: str, field_name: str | None,
             mask: np.ndarray | pd.Series, frame: pd.DataFrame, message: str) -> None:
        """One issue per offending row of ``frame`` (``mask`` true), capped; ``{value}`` in the message
        is replaced by the cell of ``field_name``."""
        positions = np.flatnonzero(np.asarray(mask, dtype=bool))
        for pos in positions[:MAX_ROWS_PER_RULE]:
            value = frame[field_name].iloc[pos] if field_name and field_name in frame else None
            shown = "" if value is None or value is pd.NA else str(value)
            self.add(severity, code, message.format(value=shown), file, row_number(frame, int(pos)),
                     field_name)
        if len(positions) > MAX_ROWS_PER_RULE:
            self.add(severity, code, f"... and {len(positions) - MAX_ROWS_PER_RULE} more rows like this",
                     file, None, field_name)

    @property
    def errors(self) -> list[FeedIssue]:
        return [i for i in self.items if i.severity == "error"]

    @property
    def warnings(self) -> list[FeedIssue]:
        return [i for i in self.items if i.severity == "warning"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise FeedInvalid(self.items)


def row_number(frame: pd.DataFrame, position: int) -> int:
    """Line number in the source file of the row at ``position``: frames keep a ``_line`` column
    when rows were reordered; otherwise data rows start on line 2."""
    if "_line" in frame.columns:
        return int(frame["_line"].iloc[position])
    return int(frame.index[position]) + 2


def check_required_columns(issues: IssueList, file: str, frame: pd.DataFrame, columns: Iterable[str]) -> bool:
    """Each required column must exist and have no empty cells; returns False when one is absent."""
    complete = True
    for column in columns:
        if column not in frame.columns:
            issues.add("error", "missing_required_column", f"required column {column} is missing", file,
                       1, column)
            complete = False
            continue
        empty = frame[column].isna().to_numpy(dtype=bool).copy()
        if frame[column].dtype.kind in "OUT" or str(frame[column].dtype) in ("string", "str"):
            empty |= (frame[column].astype("string").str.strip() == "").fillna(True).to_numpy(dtype=bool)
        issues.rows("error", "missing_required_field", file, column, empty, frame,
                    f"required field {column} is empty")
    return complete


def check_references(issues: IssueList, file: str, frame: pd.DataFrame, column: str, known: pd.Index,
                     target: str, *, optional: bool = True) -> None:
    """Values of ``frame[column]`` must exist in ``known`` (ids of ``target``)."""
    if column not in frame.columns:
        return
    values = frame[column]
    present = values.notna().to_numpy(dtype=bool)
    unknown = present & ~values.isin(known).to_numpy(dtype=bool)
    if not optional:
        unknown |= ~present
    issues.rows("error", "foreign_key_violation", file, column, unknown, frame,
                f"{column} {{value!r}} does not exist in {target}")


def canonical_issues(source: str, *, as_errors: bool = False) -> list[FeedIssue]:
    """Run MobilityData's canonical rules (gtfs-guru) and return them as issues.

    Real feeds routinely carry canonical errors that do not stop us serving them (a short row in
    fare_attributes.txt, say), so by default they are reported as warnings.
    """
    import gtfs_guru  # a compiled validator; imported lazily because it is optional at run time

    result = gtfs_guru.validate(source)
    found: list[FeedIssue] = []
    for notice in result.notices:
        if notice.severity == "INFO":
            continue
        severity: Severity = "error" if (as_errors and notice.severity == "ERROR") else "warning"
        row = notice.get("csvRowNumber")
        found.append(
            FeedIssue(severity, f"canonical:{notice.code}", str(notice.message or notice.code),
                      notice.get("filename") or None, row if isinstance(row, int) else None,
                      notice.get("fieldName") or None)
        )
    return found
