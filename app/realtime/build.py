"""How many arrivals a board holds: the worker's ``BoardWriter`` stores at most this many rows per stop, and the
arrivals API (``app.realtime.serving``) and its SSE stream (``app.realtime.sse``) answer a full board up to it.

The boards themselves are built by the worker (``app.worker.loop``: ``app.realtime.compose`` rows written by
``app.realtime.shards.BoardWriter``); without a board the API answers from the timetable (``app.schedule``).
"""

from __future__ import annotations

__all__ = ["BOARD_LIMIT"]

BOARD_LIMIT = 20
