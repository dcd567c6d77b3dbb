"""Staff reports: boarding facts from every tap source, rollups kept current from them, and report queries."""
