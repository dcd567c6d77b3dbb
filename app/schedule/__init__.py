"""Schedule services: GTFS import into feed versions, and the queries the API answers from."""
