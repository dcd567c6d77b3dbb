"""AVL in the service: ingest (JSON API, GTFS-realtime, CSV) into partitioned storage, incremental stop events."""
