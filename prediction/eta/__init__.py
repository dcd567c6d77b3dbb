"""Arrival prediction: features, the production predictor and baselines, replay, scoring and model files."""
