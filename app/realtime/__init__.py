"""Real-time serving: stop boards and GTFS-rt snapshots in Redis, written by the worker's ``BoardWriter``
(``app.realtime.shards``), read by the API."""
