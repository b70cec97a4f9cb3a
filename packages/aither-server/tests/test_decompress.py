"""Decompression costs work linear in the body's size, whatever its shape (issue 23): a gzip stream of many
members, each a few bytes, once made each member copy the rest of the body (4 MB of empty members: 11 s of CPU)."""

from __future__ import annotations

import gzip
import os
import zlib
from typing import Any

import pytest

from aither_server.ingest import body as otlp_body


class _Fed:
    """Counts the compressed bytes handed to zlib (the work each call does is in proportion to them)."""

    def __init__(self) -> None:
        self.bytes = 0
        self._make = zlib.decompressobj

    def decompressobj(self, *args: Any) -> Any:
        engine = self._make(*args)
        fed = self

        class _Counting:
            def decompress(self, data: bytes, max_length: int = 0) -> bytes:
                fed.bytes += len(data)
                return engine.decompress(data, max_length)

            def __getattr__(self, name: str) -> Any:
                return getattr(engine, name)

        return _Counting()


def test_many_gzip_members_cost_linear_work(monkeypatch: pytest.MonkeyPatch) -> None:
    fed = _Fed()
    monkeypatch.setattr(zlib, "decompressobj", fed.decompressobj)
    body = gzip.compress(b"") * 20_000 + gzip.compress(b"end")
    assert otlp_body.decompress(body, "gzip", 1024) == b"end"
    # Each member is handed at most a small first slice: a bounded multiple of the body, not members x body.
    assert fed.bytes < 16 * len(body), (fed.bytes, len(body))


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_members_and_long_streams_decompress_whole(encoding: str) -> None:
    data = os.urandom(300_000) + b"a" * 3_000_000  # long enough to need several input and output steps
    one = gzip.compress(data) if encoding == "gzip" else zlib.compress(data)
    body = one + gzip.compress(b"tail") if encoding == "gzip" else one
    expected = data + b"tail" if encoding == "gzip" else data
    assert otlp_body.decompress(body, encoding, len(expected)) == expected
    with pytest.raises(otlp_body.BodyTooLarge):
        otlp_body.decompress(body, encoding, len(expected) - 1)
    with pytest.raises(otlp_body.MalformedBody):
        otlp_body.decompress(body[:-3], encoding, len(expected))
