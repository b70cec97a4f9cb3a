"""Reads for the API and the dashboard: models, metrics, quality over time and by segment, predictions."""
