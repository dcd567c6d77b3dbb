"""Qala prediction core: GTFS schedule, AVL geometry and ML; imports without Flask, SQLAlchemy or Redis."""
