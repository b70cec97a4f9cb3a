"""Plain types every layer may import: decoded span records, JSON values, rollup keys, sampled rows, API key formats.

Nothing here imports another layer of the server."""
