"""Access to the files of a GTFS feed, a zip or a folder, read as raw text for what gtfs-kit skips."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import IO

import pandas as pd

from prediction.gtfs.feedcheck import FeedInvalid, FeedIssue

__all__ = ["FeedSource"]


class FeedSource:
    """A GTFS feed on disk: a ``.zip`` or a folder of ``.txt`` files."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FeedInvalid([FeedIssue("error", "feed_not_found", f"{self.path} does not exist")])
        if self.path.is_file() and not zipfile.is_zipfile(self.path):
            raise FeedInvalid([FeedIssue("error", "not_a_zip", f"{self.path} is neither a zip nor a folder")])
        self._names = self._list()

    def _list(self) -> dict[str, str]:
        """Map ``table name -> member name`` for the top-level .txt files with content."""
        names: dict[str, str] = {}
        if self.path.is_dir():
            for p in sorted(self.path.iterdir()):
                if p.is_file() and p.suffix == ".txt" and p.stat().st_size:
                    names[p.stem] = p.name
            return names
        with zipfile.ZipFile(self.path) as zf:
            members = [Path(i.filename) for i in zf.infolist()
                       if not i.is_dir() and i.filename.endswith(".txt") and i.file_size]
        folders = {m.parent for m in members}
        # the files belong at the top of the zip; a zip of one folder holding them is common too
        home = next(iter(folders)) if len(folders) == 1 else Path(".")
        for member in members:
            if member.parent == home:
                names[member.stem] = member.as_posix()
        return names

    def has(self, table: str) -> bool:
        return table in self._names

    @property
    def tables(self) -> list[str]:
        return sorted(self._names)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        if self.path.is_file():
            digest.update(self.path.read_bytes())
        else:
            for table in self.tables:
                digest.update(table.encode())
                digest.update((self.path / self._names[table]).read_bytes())
        return digest.hexdigest()

    def read_raw(self, table: str) -> pd.DataFrame | None:
        """Read one file as text: every cell a string, empty cells missing, column names stripped."""
        if table not in self._names:
            return None

        def read(source: Path | IO[bytes]) -> pd.DataFrame:
            return pd.read_csv(source, dtype="string", keep_default_na=False, na_values=[""], encoding="utf-8-sig")

        try:
            if self.path.is_dir():
                frame = read(self.path / self._names[table])
            else:
                with zipfile.ZipFile(self.path) as zf, zf.open(self._names[table]) as fh:
                    frame = read(fh)
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise FeedInvalid([FeedIssue("error", "unreadable_file", f"cannot parse: {exc}",
                                         self._names[table])]) from exc
        frame.columns = [str(c).strip() for c in frame.columns]
        return frame
