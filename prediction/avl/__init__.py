"""AVL: vehicle pings matched to trips and shapes, turned into stop events as the live service does."""
