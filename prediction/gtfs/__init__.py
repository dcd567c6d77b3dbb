"""GTFS: reading, checking and calendars of a static feed, its shapes, fares and vehicle blocks."""
