"""Projected embeddings as stored for embedding drift (``drift/embeddings.py``), in SQLAlchemy Core.

- ``drift_embeddings``: per model, version, environment, hour and source width, a uniform reservoir of at most
  :data:`RESERVOIR_ROWS` projected rows of the hour's live traffic (``_meta.embeddings`` of sampled spans),
  with the count of rows it was drawn from. float32, rows by ``EMBEDDING_DIM``, as bytes.
- ``drift_embedding_references``: the projected rows a reference was sent with (``log_reference(...,
  embeddings=)``), by model, version and reference name, beside its profiles in ``drift_references``.

Created by revision ``0016`` from this module's metadata.
"""

from __future__ import annotations

import zlib

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    and_,
    delete,
    insert,
    select,
)

from aither_server.store.model_keyed import model_filter, model_hour, names

__all__ = [
    "EMBEDDING_DIM",
    "RESERVOIR_ROWS",
    "EmbeddingStore",
    "Vectors",
    "drift_embedding_references",
    "drift_embeddings",
    "metadata",
]

#: Width of every projected embedding (the SDK's ``aither._capture._embeddings.EMBEDDING_DIM``).
EMBEDDING_DIM = 32
#: Live rows kept per model and hour: enough for a classifier, bounded whatever the traffic.
RESERVOIR_ROWS = 500

metadata = MetaData()

drift_embeddings = Table(
    "drift_embeddings",
    metadata,
    *model_hour(),
    Column("dim", Integer, nullable=False),
    Column("seen", BigInteger, nullable=False),
    Column("vectors", LargeBinary, nullable=False),
    PrimaryKeyConstraint("model", "version", "environment", "hour", "dim"),
)

drift_embedding_references = Table(
    "drift_embedding_references",
    metadata,
    *names("model", "version", "name"),
    Column("dim", Integer, nullable=False),
    Column("vectors", LargeBinary, nullable=False),
    PrimaryKeyConstraint("model", "version", "name"),
)

#: (model, version, environment), hour, source width -> new projected rows.
NewRows = dict[tuple[tuple[str, str, str], int, int], list[list[float]]]
#: Projected rows: float32, rows by ``EMBEDDING_DIM``.
Vectors = NDArray[np.float32]


def _pack(array: Vectors) -> bytes:
    return zlib.compress(np.ascontiguousarray(array, dtype="<f4").tobytes(), 1)


def _unpack(blob: bytes) -> Vectors:
    return np.frombuffer(zlib.decompress(blob), dtype="<f4").reshape(-1, EMBEDDING_DIM)


class EmbeddingStore:
    """Reads and writes the two tables through the drift store's engine."""

    def __init__(self, engine: Engine, *, seed: int = 0) -> None:
        self.engine = engine
        self._rng = np.random.default_rng(seed)

    def add(self, new: NewRows) -> None:
        """Merge each hour's new rows into its reservoir (uniform over every row the hour was sent); one transaction."""
        if not new:
            return
        t = drift_embeddings
        with self.engine.begin() as conn:
            for ((model, version, environment), hour, dim), rows in sorted(new.items()):
                key = and_(
                    t.c.model == model,
                    t.c.version == version,
                    t.c.environment == environment,
                    t.c.hour == hour,
                    t.c.dim == dim,
                )
                found = conn.execute(select(t.c.seen, t.c.vectors).where(key)).first()
                if found is None:
                    seen, kept = 0, np.empty((0, EMBEDDING_DIM), np.float32)
                else:
                    seen, kept = int(found.seen), _unpack(found.vectors)
                kept, seen = self._reservoir(kept, seen, np.asarray(rows, dtype=np.float32))
                conn.execute(delete(t).where(key))
                conn.execute(
                    insert(t).values(
                        model=model,
                        version=version,
                        environment=environment,
                        hour=hour,
                        dim=dim,
                        seen=seen,
                        vectors=_pack(kept),
                    )
                )

    def _reservoir(self, kept: Vectors, seen: int, rows: Vectors) -> tuple[Vectors, int]:
        """Algorithm R: the ``i``-th row of the hour's stream (from 0) stays with probability
        ``RESERVOIR_ROWS / (i + 1)``, so the reservoir is a uniform sample of every row sent."""
        room = max(0, RESERVOIR_ROWS - kept.shape[0])
        kept = np.concatenate([kept, rows[:room]])  # a reservoir not yet full holds every row seen
        index = seen + min(room, rows.shape[0])
        for row in rows[room:]:
            slot = int(self._rng.integers(0, index + 1))
            if slot < RESERVOIR_ROWS:
                kept[slot] = row
            index += 1
        return kept, seen + rows.shape[0]

    def live(
        self,
        model: str,
        version: str | None,
        environment: str | None,
        start_hour: int | None,
        end_hour: int | None,
    ) -> dict[int, list[tuple[Vectors, int]]]:
        """Source width -> each hour's ``(reservoir, rows it was drawn from)`` in ``[start_hour, end_hour)``."""
        t = drift_embeddings
        query = select(t.c.dim, t.c.seen, t.c.vectors).where(*model_filter(t, model, version, environment))
        if start_hour is not None:
            query = query.where(t.c.hour >= start_hour)
        if end_hour is not None:
            query = query.where(t.c.hour < end_hour)
        out: dict[int, list[tuple[Vectors, int]]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                out.setdefault(int(row.dim), []).append((_unpack(row.vectors), int(row.seen)))
        return out

    def put_reference(self, model: str, version: str, name: str, embeddings: tuple[int, Vectors] | None) -> None:
        """Store (or, with None, forget) the projected rows of the reference ``name`` of ``model`` and ``version``."""
        t = drift_embedding_references
        key = and_(t.c.model == model, t.c.version == version, t.c.name == name)
        with self.engine.begin() as conn:
            conn.execute(delete(t).where(key))
            if embeddings is not None:
                dim, vectors = embeddings
                conn.execute(insert(t).values(model=model, version=version, name=name, dim=dim, vectors=_pack(vectors)))

    def reference(self, model: str, version: str, name: str) -> tuple[int, Vectors] | None:
        """``(source width, projected rows)`` of a stored reference, or None when it was sent without them."""
        t = drift_embedding_references
        query = select(t.c.dim, t.c.vectors).where(t.c.model == model, t.c.version == version, t.c.name == name)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else (int(row.dim), _unpack(row.vectors))
