"""One router per resource: ingest, management, query, drift, quality, monitors."""
