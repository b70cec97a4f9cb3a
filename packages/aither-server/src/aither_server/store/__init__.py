"""The database: the engine, migrations, and the writes of ingestion, keys, usage, rollups and retention."""
