"""The worker's board writer: boards built from rows several workers (shards by route) contribute per stop.

One worker (``shards == 1``) writes each board directly in pipelined batches. With several, a stop served by
routes of different shards must show all their rows, and no shard may overwrite another's: each shard stores
its rows of a stop as one field of ``qala:board-parts:<stop_id>`` and a Lua script — atomic in Redis —
stores the part, drops parts whose shard stopped writing (expired), merges the rows of every part (soonest
``limit``), writes the board and announces it when its ETag changed. Two shards writing the same stop at the
same moment are serialised by Redis, so neither loses the other's rows.

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

from app.cache import key
from app.realtime.compose import BoardRows
from app.realtime.publisher import PublishResult
from app.realtime.store import VERSION_KEY, board_channel, board_key, snapshot_key

__all__ = ["BoardWriter", "parts_key", "snapshot_parts_key"]

_MERGE_BOARD = """
local parts, board, channel = KEYS[1], KEYS[2], KEYS[3]
local now, limit, ttl = tonumber(ARGV[3]), tonumber(ARGV[6]), tonumber(ARGV[5])
redis.call('HSET', parts, ARGV[1], ARGV[2])
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
  if redis.call('DEL', board) == 1 then redis.call('PUBLISH', channel, '') return 1 end
  return 0
end
local arrivals = table.concat(out, ',')
local etag = 'W/"' .. string.sub(redis.sha1hex(ARGV[7] .. realtime .. arrivals), 1, 20) .. '"'
local old = redis.call('HGET', board, 'etag')
redis.call('HSET', board, 'json', ARGV[4] .. '"realtime":' .. realtime .. ',"arrivals":[' .. arrivals .. ']}',
           'etag', etag, 'version', ARGV[8])
redis.call('EXPIRE', board, ttl)
if old ~= etag then redis.call('PUBLISH', channel, etag) return 1 end
return 0
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


def parts_key(stop_id: str) -> str:
    return key("board-parts", stop_id)


def snapshot_parts_key(feed: str) -> str:
    return key("gtfs-rt-parts", feed)


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass
class BoardWriter:
    """Writes one worker's boards; keep one per worker (it remembers which stops it wrote last cycle)."""

    client: Any
    stops: Mapping[str, dict[str, Any]]  # the catalog's stop items
    timezone: dt.tzinfo
    shard: int = 0
    shards: int = 1
    ttl_s: int = 90
    batch_size: int = 500
    limit: int = 20
    _stop_json: dict[str, str] = field(default_factory=dict)
    _written: set[str] = field(default_factory=set)
    _announced: dict[str, str] = field(default_factory=dict)
    _scripts: dict[str, Any] = field(default_factory=dict)

    def _stop(self, stop_id: str) -> str:
        text = self._stop_json.get(stop_id)
        if text is None:
            text = self._stop_json[stop_id] = _dump(self.stops[stop_id])
        return text

    def _head(self, stop_id: str, generated: str, window_min: int, version: int) -> str:
        return (f'{{"stop":{self._stop(stop_id)},"timezone":{_dump(str(self.timezone))},"generated_at":"{generated}",'
                f'"at":"{generated}","window_min":{window_min},"source":"board","version":{version},')

    def write(self, board_rows: BoardRows, *, now: float, window_min: int) -> PublishResult:
        """Store this cycle's boards; stops this worker wrote before but has no rows for now lose its rows."""
        version = int(self.client.incr(VERSION_KEY))
        generated = dt.datetime.fromtimestamp(int(now), self.timezone).isoformat(timespec="seconds")
        stops = sorted(set(board_rows.rows) | self._written)
        changed = 0
        for start in range(0, len(stops), self.batch_size):
            pipe = self.client.pipeline(transaction=False)
            for stop_id in stops[start:start + self.batch_size]:
                rows = board_rows.rows.get(stop_id, [])
                if self.shards == 1:
                    changed += self._queue_board(pipe, stop_id, rows, generated, window_min, version)
                else:
                    self._queue_part(pipe, stop_id, rows, now, generated, window_min, version)
            results = pipe.execute()
            if self.shards > 1:
                changed += sum(int(r) for r in results if isinstance(r, int))
        self._written = {s for s, rows in board_rows.rows.items() if rows}
        return PublishResult(version=version, written=len(self._written), changed=changed)

    def _queue_board(self, pipe: Any, stop_id: str, rows: list[tuple[str, bool, str]], generated: str,
                     window_min: int, version: int) -> int:
        target = board_key(stop_id)
        if not rows:
            pipe.delete(target)
            self._announced.pop(stop_id, None)
            pipe.publish(board_channel(stop_id), "")
            return 1
        rows = sorted(rows)[:self.limit]
        realtime = "true" if any(r[1] for r in rows) else "false"
        arrivals = ",".join(r[2] for r in rows)
        etag = 'W/"' + hashlib.sha1((self._stop(stop_id) + realtime + arrivals).encode()).hexdigest()[:20] + '"'
        body = f'{self._head(stop_id, generated, window_min, version)}"realtime":{realtime},"arrivals":[{arrivals}]}}'
        pipe.hset(target, mapping={"json": body.encode(), "etag": etag, "version": version})
        pipe.expire(target, self.ttl_s)
        if self._announced.get(stop_id) == etag:
            return 0
        self._announced[stop_id] = etag
        pipe.publish(board_channel(stop_id), etag)
        return 1

    def _script(self, name: str, source: str) -> Any:
        if name not in self._scripts:
            self._scripts[name] = self.client.register_script(source)
        return self._scripts[name]

    def _queue_part(self, pipe: Any, stop_id: str, rows: list[tuple[str, bool, str]], now: float, generated: str,
                    window_min: int, version: int) -> None:
        lines = "\n".join(f"{k}\t{'R' if realtime else 'S'}\t{text}" for k, realtime, text in sorted(rows)[:self.limit])
        part = f"{int(now) + self.ttl_s}\n{lines}"
        self._script("board", _MERGE_BOARD)(
            keys=[parts_key(stop_id), board_key(stop_id), board_channel(stop_id)],
            args=[str(self.shard), part, int(now), self._head(stop_id, generated, window_min, version), self.ttl_s,
                  self.limit, self._stop(stop_id), version], client=pipe)

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
