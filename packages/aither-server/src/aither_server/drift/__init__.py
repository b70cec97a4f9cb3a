"""Drift and data quality: per-hour sketches fed from ingestion, the statistics, their tables and queries."""
