"""Real-time serving: stop boards and GTFS-rt snapshots in Redis, written by the publisher, read by the API."""
