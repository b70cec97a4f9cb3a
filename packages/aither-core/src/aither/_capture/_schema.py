"""The whole input's schema (column names and dtypes) in ``_meta``: built once per schema, inline or by hash.

A schema of at most :data:`INLINE_COLUMNS` columns is written into every span's ``_meta`` as ``columns`` and
``dtypes``. A wider one would cost more bytes per span than the sample itself, so each span carries only its
hash in ``_meta.schema``; the columns and dtypes go with the first span of that schema in this process and
again every :data:`RESEND_SECONDS`, so a server that lost that span learns the schema again soon.
Everything here runs on the worker thread (the renderers), never on the caller's.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable, Sequence

__all__ = [
    "INLINE_COLUMNS",
    "RESEND_SECONDS",
    "forget_sent",
    "schema_hash",
    "schema_meta",
    "schema_names",
    "unique_names",
]

#: Widest schema written inline in every span (the seed README's frames have 100 columns).
INLINE_COLUMNS = 100
#: How often a wide schema is sent again in full, in case the span that carried it was lost.
RESEND_SECONDS = 600.0

_Entry = tuple[list[str], dict[str, str], "str | None"]
# A schema by its full value, (names, dtypes) -> (names, dtypes by name, hash or None when inline); bounded.
_schemas: dict[tuple[tuple[str, ...], tuple[str, ...]], _Entry] = {}
# The same entries by a cheap key of the caller's object, the object kept alive so that its id stays its own.
_by_key: dict[Hashable, tuple[_Entry, object]] = {}
# hash -> when its full schema was last sent (monotonic seconds).
_sent: dict[str, float] = {}


def schema_hash(names: Sequence[str], dtypes: Sequence[str]) -> str:
    """A stable 16-hex-digit hash of a schema: the same on every process and on the server."""
    import hashlib  # only wide schemas are hashed, on the worker: ``import aither`` does not pay for it
    import json

    text = json.dumps([list(names), list(dtypes)], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def unique_names(names: Iterable[object]) -> list[str]:
    """Column names as text, each once: a repeated name (two ``"a"`` columns of a frame, or ``1`` and ``"1"``)
    gets ``.1``, ``.2``... as pandas' ``read_csv`` names them, so no column hides another in a row's dict."""
    listed = [str(name) for name in names]
    if len(set(listed)) == len(listed):
        return listed
    seen = set(listed)
    counts: dict[str, int] = {}
    out = []
    for name in listed:
        if name in counts:
            number = counts[name]
            while f"{name}.{number}" in seen:
                number += 1
            counts[name] = number + 1
            renamed = f"{name}.{number}"
            seen.add(renamed)
            out.append(renamed)
        else:
            counts[name] = 1
            out.append(name)
    return out


def schema_meta(
    key: Hashable, names: Iterable[object], dtypes: Iterable[object], anchor: object = None
) -> dict[str, object]:
    """The ``_meta`` entries describing a schema: ``columns`` and ``dtypes`` inline, else ``schema`` (and the
    full schema when it is due). ``key`` identifies the schema cheaply; ``names`` and ``dtypes`` are read only
    the first time a key is seen. ``anchor`` is kept with the entry: a key holding its ``id()`` stays valid."""
    listed, by_name, digest = _entry(key, names, dtypes, anchor)
    if digest is None:
        return {"columns": listed, "dtypes": by_name}
    now = time.monotonic()
    last = _sent.get(digest)
    if last is not None and now - last < RESEND_SECONDS:
        return {"schema": digest}
    _sent[digest] = now
    return {"schema": digest, "columns": listed, "dtypes": by_name}


def schema_names(key: Hashable, names: Iterable[object], dtypes: Iterable[object], anchor: object = None) -> list[str]:
    """The schema's column names as the sample's rows are keyed (:func:`unique_names`), built once per key."""
    return _entry(key, names, dtypes, anchor)[0]


def _entry(key: Hashable, names: Iterable[object], dtypes: Iterable[object], anchor: object) -> _Entry:
    found = _by_key.get(key)
    if found is None:
        listed = unique_names(names)
        kinds = tuple(str(d) for d in dtypes)
        value_key = (tuple(listed), kinds)
        entry = _schemas.get(value_key)
        if entry is None:
            digest = schema_hash(listed, kinds) if len(listed) > INLINE_COLUMNS else None
            if len(_schemas) >= 1024:
                _schemas.clear()
            entry = _schemas[value_key] = (listed, dict(zip(listed, kinds, strict=True)), digest)
        if len(_by_key) >= 1024:
            _by_key.clear()
        _by_key[key] = (entry, anchor)
        return entry
    return found[0]


def forget_sent() -> None:
    """Send every wide schema in full again with its next span (tests; a new backend)."""
    _sent.clear()
