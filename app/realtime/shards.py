"""The worker's board writer: boards built from rows several workers (shards by route) contribute per stop.

One worker (``shards == 1``) writes its boards directly: one Lua script call per batch of 500 boards (a
pipeline of HSET + EXPIRE + PUBLISH per board cost more in redis-py's command packing than Redis spends
running them), boards whose rows did not change since its last write only get their TTL refreshed. With
several, a stop served by routes of different shards must show all their rows, and no shard may overwrite
another's: each shard stores its rows of a stop as one field of ``qala:board-parts:<stop_id>`` and a Lua
script — atomic in Redis, one call per batch of stops — stores the part, drops parts whose shard stopped
writing (expired), merges the rows of every part (soonest ``limit``), writes the board when its ETag changed
(else refreshes its TTL) and announces it. Two shards writing the same stop at the same moment are serialised
by Redis, so neither loses the other's rows.

GTFS-rt snapshots work the same way: each shard stores its entities as a serialized ``FeedMessage`` without a
header, and the full snapshot is a fresh header followed by every live part — protobuf parses concatenated
messages as one message with the repeated ``entity`` field appended.

The board JSON has the shape of ``Board.payload``; the ETag covers the stop, the realtime flag and the rows
(not ``generated_at`` or ``version``), so republishing unchanged content keeps answering ``304``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.commands.core import Script

from app.cache import RedisClient, key
from app.realtime.build import BOARD_LIMIT
from app.realtime.compose import BoardRows
from app.realtime.store import VERSION_KEY, board_channel, board_key, snapshot_key

__all__ = ["BoardWriter", "PublishResult", "parts_key", "snapshot_parts_key"]

# Single worker: per board KEYS[i]; ARGV[1] ttl, ARGV[2] version, then (body, etag, channel) per board. A body
# writes the board and announces it when its ETag changed; an empty body with an ETag only refreshes the TTL of
# a board that still carries that ETag (returned as missing otherwise, to be written in full); an empty body
# and ETag delete the board. Returns {changed, missing board numbers...}.
_WRITE_BOARDS = """
local ttl, version = tonumber(ARGV[1]), ARGV[2]
local out = {0}
for i = 1, #KEYS do
  local board, body, etag, channel = KEYS[i], ARGV[3 * i], ARGV[3 * i + 1], ARGV[3 * i + 2]
  if body ~= '' then
    local old = redis.call('HGET', board, 'etag')
    redis.call('HSET', board, 'json', body, 'etag', etag, 'version', version)
    redis.call('EXPIRE', board, ttl)
    if old ~= etag then redis.call('PUBLISH', channel, etag) out[1] = out[1] + 1 end
  elseif etag == '' then
    if redis.call('DEL', board) == 1 then redis.call('PUBLISH', channel, '') out[1] = out[1] + 1 end
  elseif redis.call('HGET', board, 'etag') == etag then
    redis.call('EXPIRE', board, ttl)
  else
    out[#out + 1] = i
  end
end
return out
"""

# Shards: per stop KEYS (parts, board, channel); ARGV[1] shard, [2] now, [3] ttl, [4] limit, [5] version,
# [6] the head after the stop item, then (part, stop item JSON) per stop. Returns how many boards changed.
_MERGE_BOARDS = """
local shard, now, ttl, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local version, head = ARGV[5], ARGV[6]
local changed = 0
for s = 1, #KEYS / 3 do
  local parts, board, channel = KEYS[3 * s - 2], KEYS[3 * s - 1], KEYS[3 * s]
  local part, stop = ARGV[5 + 2 * s], ARGV[6 + 2 * s]
  redis.call('HSET', parts, shard, part)
  redis.call('EXPIRE', parts, ttl)
  local fields = redis.call('HGETALL', parts)
  local rows = {}
  for i = 1, #fields, 2 do
    local value = fields[i + 1]
    local nl = string.find(value, '\\n', 1, true)
    local expires = tonumber(string.sub(value, 1, (nl or (#value + 1)) - 1))
    if expires == nil or expires < now then
      redis.call('HDEL', parts, fields[i])
    elseif nl then
      for line in string.gmatch(string.sub(value, nl + 1), '[^\\n]+') do rows[#rows + 1] = line end
    end
  end
  table.sort(rows)
  local out, realtime = {}, 'false'
  for i = 1, math.min(#rows, limit) do
    local line = rows[i]
    if string.sub(line, 13, 13) == 'R' then realtime = 'true' end
    out[#out + 1] = string.sub(line, 15)
  end
  if #out == 0 then
    if redis.call('DEL', board) == 1 then redis.call('PUBLISH', channel, '') changed = changed + 1 end
  else
    local arrivals = table.concat(out, ',')
    local etag = 'W/"' .. string.sub(redis.sha1hex(stop .. realtime .. arrivals), 1, 20) .. '"'
    if redis.call('HGET', board, 'etag') == etag then
      redis.call('EXPIRE', board, ttl)
    else
      redis.call('HSET', board, 'json', '{"stop":' .. stop .. ',' .. head .. '"realtime":' .. realtime ..
                 ',"arrivals":[' .. arrivals .. ']}', 'etag', etag, 'version', version)
      redis.call('EXPIRE', board, ttl)
      redis.call('PUBLISH', channel, etag)
      changed = changed + 1
    end
  end
end
return changed
"""

_MERGE_SNAPSHOT = """
local parts, snapshot = KEYS[1], KEYS[2]
local now, ttl = tonumber(ARGV[4]), tonumber(ARGV[6])
redis.call('HSET', parts, ARGV[1], ARGV[2], ARGV[1] .. ':expires', ARGV[3])
redis.call('EXPIRE', parts, ttl)
local fields = redis.call('HGETALL', parts)
local values, shards = {}, {}
for i = 1, #fields, 2 do values[fields[i]] = fields[i + 1] end
for name, value in pairs(values) do
  if not string.find(name, ':expires', 1, true) then
    local expires = tonumber(values[name .. ':expires'] or '0')
    if expires < now then redis.call('HDEL', parts, name, name .. ':expires') else shards[#shards + 1] = name end
  end
end
table.sort(shards)
local body = {ARGV[5]}
for _, name in ipairs(shards) do body[#body + 1] = values[name] end
redis.call('HSET', snapshot, 'pb', table.concat(body), 'timestamp', ARGV[4])
redis.call('EXPIRE', snapshot, ttl)
return #shards
"""


@dataclass(frozen=True)
class PublishResult:
    """One write: the version this cycle's changed boards carry, how many boards it wrote, how many changed."""

    version: int
    written: int
    changed: int


def parts_key(stop_id: str) -> str:
    return key("board-parts", stop_id)


def snapshot_parts_key(feed: str) -> str:
    return key("gtfs-rt-parts", feed)


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass
class BoardWriter:
    """Writes one worker's boards; keep one per worker (it remembers what it wrote last cycle).

    A board whose rows are what this writer stored last cycle only has its TTL refreshed (its ``generated_at`` and
    ``version`` stay those of the last change, and ``minutes_away`` stays counted from that ``generated_at``);
    every changed board is written whole under this cycle's version and announced.
    """

    client: RedisClient
    stops: Mapping[str, dict[str, Any]]  # the catalog's stop items
    timezone: dt.tzinfo
    shard: int = 0
    shards: int = 1
    ttl_s: int = 90
    batch_size: int = 500
    limit: int = BOARD_LIMIT
    _stop_json: dict[str, str] = field(default_factory=dict)
    _written: set[str] = field(default_factory=set)
    _content: dict[str, tuple[bool, str, str]] = field(default_factory=dict)  # stop → (realtime, arrivals, etag)
    _scripts: dict[str, Script] = field(default_factory=dict)
    _stop_raw: dict[str, bytes] = field(default_factory=dict)
    _key_cache: dict[str, tuple[str, str]] = field(default_factory=dict)

    def _stop(self, stop_id: str) -> str:
        text = self._stop_json.get(stop_id)
        if text is None:
            text = self._stop_json[stop_id] = _dump(self.stops[stop_id])
        return text

    def _head(self, generated: str, window_min: int, version: int) -> str:
        """The board's fields between the stop item and ``realtime``."""
        return (f'"timezone":{_dump(str(self.timezone))},"generated_at":"{generated}","at":"{generated}",'
                f'"window_min":{window_min},"source":"board","version":{version},')

    def write(self, board_rows: BoardRows, *, now: float, window_min: int) -> PublishResult:
        """Store this cycle's boards; stops this worker wrote before but has no rows for now lose its rows."""
        version = int(self.client.incr(VERSION_KEY))
        generated = dt.datetime.fromtimestamp(int(now), self.timezone).isoformat(timespec="seconds")
        head = self._head(generated, window_min, version)
        gone = sorted(self._written.difference(board_rows.stop_ids))
        if self.shards == 1:
            changed = self._write_boards(board_rows, gone, head.encode(), version)
        else:
            changed = self._merge_boards(board_rows, gone, now, head, version)
        self._written = set(board_rows.stop_ids)
        return PublishResult(version=version, written=len(board_rows), changed=changed)

    def _board(self, stop_id: str, realtime: bool, arrivals: str, head: bytes) -> tuple[bytes, str]:
        """The board's JSON and ETag (over the stop, the realtime flag and the rows: what a reader sees change)."""
        flag, stop = (b"true" if realtime else b"false"), self._stop_bytes(stop_id)
        rows = arrivals.encode()
        digest = hashlib.sha1(stop)
        digest.update(flag)
        digest.update(rows)
        body = b"".join((b'{"stop":', stop, b",", head, b'"realtime":', flag, b',"arrivals":[', rows, b"]}"))
        return body, 'W/"' + digest.hexdigest()[:20] + '"'

    def _stop_bytes(self, stop_id: str) -> bytes:
        found = self._stop_raw.get(stop_id)
        if found is None:
            found = self._stop_raw[stop_id] = self._stop(stop_id).encode()
        return found

    def _keys(self, stop_id: str) -> tuple[str, str]:
        """The board's key and channel (cached: key building showed in profiles at 2,000 boards a cycle)."""
        found = self._key_cache.get(stop_id)
        if found is None:
            found = self._key_cache[stop_id] = (board_key(stop_id), board_channel(stop_id))
        return found

    def _write_boards(self, board_rows: BoardRows, gone: list[str], head: bytes, version: int) -> int:
        entries: list[tuple[str, bytes, str]] = []  # (stop, body or b"" for TTL only, etag or "" to delete)
        for i, stop_id in enumerate(board_rows.stop_ids):
            realtime, arrivals = board_rows.arrivals(i)
            old = self._content.get(stop_id)
            if old is not None and old[0] == realtime and old[1] == arrivals:
                entries.append((stop_id, b"", old[2]))
                continue
            body, etag = self._board(stop_id, realtime, arrivals, head)
            self._content[stop_id] = (realtime, arrivals, etag)
            entries.append((stop_id, body, etag))
        for stop_id in gone:
            self._content.pop(stop_id, None)
            entries.append((stop_id, b"", ""))
        changed, missing = self._run_writes(entries, version)
        if missing:  # unchanged here but not (or no longer) in Redis as written: write them whole
            again = []
            for stop_id in missing:
                realtime, arrivals, _ = self._content[stop_id]
                body, etag = self._board(stop_id, realtime, arrivals, head)
                again.append((stop_id, body, etag))
            changed += self._run_writes(again, version)[0]
        return changed

    def _run_writes(self, entries: list[tuple[str, bytes, str]], version: int) -> tuple[int, list[str]]:
        script = self._script("boards", _WRITE_BOARDS)
        pipe = self.client.pipeline(transaction=False)
        batches = [entries[i:i + self.batch_size] for i in range(0, len(entries), self.batch_size)]
        for batch in batches:
            args: list[Any] = [self.ttl_s, version]
            keys = []
            for stop_id, body, etag in batch:
                board, channel = self._keys(stop_id)
                keys.append(board)
                args += (body, etag, channel)
            script(keys=keys, args=args, client=pipe)
        changed, missing = 0, []
        for batch, result in zip(batches, pipe.execute(), strict=True):
            changed += int(result[0])
            missing += [batch[int(i) - 1][0] for i in result[1:]]
        return changed, missing

    def _merge_boards(self, board_rows: BoardRows, gone: list[str], now: float, head: str, version: int) -> int:
        expires = f"{int(now) + self.ttl_s}\n"
        parts = [(stop_id, expires + board_rows.lines(i)) for i, stop_id in enumerate(board_rows.stop_ids)]
        parts += [(stop_id, expires) for stop_id in gone]
        script = self._script("merge", _MERGE_BOARDS)
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(parts), self.batch_size):
            keys: list[str] = []
            args: list[Any] = [str(self.shard), int(now), self.ttl_s, self.limit, version, head]
            for stop_id, part in parts[start:start + self.batch_size]:
                keys += (parts_key(stop_id), *self._keys(stop_id))
                args += (part, self._stop(stop_id))
            script(keys=keys, args=args, client=pipe)
        return sum(int(r) for r in pipe.execute())

    def _script(self, name: str, source: str) -> Script:
        if name not in self._scripts:
            self._scripts[name] = self.client.register_script(source)
        return self._scripts[name]

    def write_snapshot(self, feed: str, header: bytes, entities: bytes, *, now: float) -> None:
        """Store this worker's GTFS-rt entities (a header-less serialized ``FeedMessage``) and the full snapshot."""
        if self.shards == 1:
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(snapshot_key(feed), mapping={"pb": header + entities, "timestamp": int(now)})
            pipe.expire(snapshot_key(feed), self.ttl_s)
            pipe.execute()
            return
        self._script("snapshot", _MERGE_SNAPSHOT)(
            keys=[snapshot_parts_key(feed), snapshot_key(feed)],
            args=[str(self.shard), entities, int(now) + self.ttl_s, int(now), header, self.ttl_s])
