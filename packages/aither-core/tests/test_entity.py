"""``aither.entity``: the calls of a block carry the entity's keyed hash as ``ml.entity``, decoded from the wire,
and never the value; calls outside the block carry none."""

from __future__ import annotations

import asyncio

import pytest

import aither
from aither.testing import OTLPReceiver


class Model:
    def predict(self, X: list[list[float]]) -> list[int]:
        return [0] * len(X)


def test_calls_in_an_entity_block_carry_its_hash_and_no_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITHER_HASH_KEY", "k1")
    with OTLPReceiver() as receiver:
        aither.init(api_key="aith_k", base_url=receiver.url, flush_interval=0.05)
        tracked = aither.wrap(Model(), name="m")
        with aither.entity("cust-9") as key:
            tracked.predict([[1.0]])
            aither.log_prediction("manual", {"x": 1}, 1)
        tracked.predict([[2.0]])
        aither.log_prediction("manual", {"x": 2}, 1, entity=17)
        assert aither.flush(10)
        spans = receiver.spans
    entities = [s.attributes.get("ml.entity") for s in spans]
    assert entities == [key, key, None, aither.entity_key(17)]
    assert key == aither.entity_key("cust-9") and key.startswith("h:") and len(key) == 18
    assert all("cust-9" not in repr(s.attributes) for s in spans)


def test_the_entity_of_one_task_is_not_another_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITHER_HASH_KEY", "k1")
    seen: dict[str, str | None] = {}

    async def call(name: str, value: str | None) -> None:
        if value is None:
            await asyncio.sleep(0.01)
            seen[name] = aither._entity.ENTITY.get()
            return
        with aither.entity(value):
            await asyncio.sleep(0.02)
            seen[name] = aither._entity.ENTITY.get()

    async def main() -> None:
        await asyncio.gather(call("a", "alice"), call("b", None))

    asyncio.run(main())
    assert seen == {"a": aither.entity_key("alice"), "b": None}
