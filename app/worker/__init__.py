"""The prediction worker (``qala worker``): AVL in, predictions out to Redis boards, GTFS-rt and the prediction log."""
