"""AVL in the service: command-line tools for simulated history and stop events (ingest comes later)."""
