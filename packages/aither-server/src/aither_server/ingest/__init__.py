"""OTLP/HTTP bodies in: media types, decompression and size limits, spans and metric points decoded into
the records of ``model``. Knows nothing of SQL."""
