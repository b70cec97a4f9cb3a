"""Privacy controls on what a span carries: column policies, value scrubbing and before_send (docs/privacy.md)."""

from __future__ import annotations

from typing import Any

import pytest

from aither._capture import capture_features, render
from aither._privacy import WITHHELD, ColumnPolicies, PolicyError, Privacy, scrub

KEY = b"test-key"

# Each positive is scrubbed to its marker; each near miss is left exactly as it is.
POSITIVES = [
    ("write to jane.doe+ml@example.co.uk today", "email"),
    ("ops@sub.example.org", "email"),
    ("paid with 4111 1111 1111 1111", "card"),
    ("card 5500-0000-0000-0004 on file", "card"),
    ("amex 378282246310005", "card"),
    ("iban DE89 3704 0044 0532 0130 00", "iban"),
    ("GB82WEST12345698765432", "iban"),
    ("from 203.0.113.7 again", "ip"),
    ("client 2001:db8::8a2e:370:7334", "ip"),
    ("loopback ::1", "ip"),
    ("ssn 123-45-6789", "ssn"),
    ("call +44 20 7946 0958", "phone"),
    ("call (555) 123-4567 now", "phone"),
    ("or 555-123-4567", "phone"),
]
NEAR_MISSES = [
    "order 4111 1111 1111 1112",  # 16 digits, fails Luhn
    "id 1234567812345678",  # 16 digits, fails Luhn
    "release 1.2.3",  # a dotted version string
    "build 10.0.19041.1",  # four parts, one over 255
    "at 12:30:45",  # a time, not an IPv6 address
    "mac 00:1a:2b:3c:4d:5e",
    "iban DE89 3704 0044 0532 0130 01",  # fails mod-97
    "ssn 000-12-3456",  # area 000 is never issued
    "on 2024-01-02",
    "user@localhost",  # no top-level domain
    "3.14159",
    "qty 42",
]


@pytest.mark.parametrize(("text", "kind"), POSITIVES)
def test_each_kind_of_personal_data_is_replaced_by_its_marker(text: str, kind: str) -> None:
    counts: dict[str, int] = {}
    cleaned = scrub(text, counts)
    assert f"[{kind}]" in cleaned
    assert counts == {kind: 1}


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_are_left_as_they_are(text: str) -> None:
    counts: dict[str, int] = {}
    assert scrub(text, counts) == text
    assert counts == {}


def _as_dict(value: object) -> dict[str, Any]:
    """A rendered or transformed sample that the test reads as a JSON object."""
    assert isinstance(value, dict)
    return value


def _features(frame: Any) -> Any:
    return render(capture_features(frame, 5, 10))


def test_column_policies_drop_hash_round_bucket_and_keep() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "email": ["a@b.com", "c@d.org"],
            "customer_id": ["c-1", "c-2"],
            "amount": [12.3456, 99.5],
            "age": [37, 42],
            "note": ["call 555-123-4567", "fine"],
            "raw": ["x@y.com", "z"],
        }
    )
    policies = ColumnPolicies(
        {"email": "drop", "customer_*": "hash", "amount": "round:1", "age": "bucket:10", "raw": "keep"},
        hash_key=KEY,
    )
    privacy = Privacy(policies)
    out = _as_dict(privacy.features("m", _features(frame)))
    rows = out["sample"]
    assert all("email" not in row for row in rows)
    assert "email" not in out["_meta"]["columns"] and "email" not in out["_meta"]["dtypes"]
    by_id = {row["amount"]: row for row in rows}
    assert set(by_id) == {12.3, 99.5}
    assert {row["age"] for row in rows} == {30, 40}
    hashed = {row["customer_id"] for row in rows}
    assert all(h.startswith("h:") and len(h) == 18 for h in hashed) and len(hashed) == 2
    assert {row["note"] for row in rows} == {"call [phone]", "fine"}
    assert {row["raw"] for row in rows} == {"x@y.com", "z"}
    assert privacy.redactions.snapshot() == {"m": {"note": {"phone": 1}}}


def test_hashing_is_stable_keyed_and_keeps_nulls() -> None:
    one = ColumnPolicies({"c": "hash"}, hash_key=KEY)
    two = ColumnPolicies({"c": "hash"}, hash_key=KEY)
    other = ColumnPolicies({"c": "hash"}, hash_key=b"another")
    action = one.action("c")
    assert action is not None
    assert one.apply(action, "x") == two.apply(action, "x") != other.apply(action, "x")
    assert one.apply(action, 1) == one.apply(action, 1) != one.apply(action, "y")
    assert one.apply(action, None) is None


def test_model_rules_override_the_clients() -> None:
    privacy = Privacy(ColumnPolicies({"a": "drop", "b": "drop"}))
    privacy.register("m", ColumnPolicies({"a": "keep"}))
    out = _as_dict(
        privacy.features("m", {"sample": [{"a": "x@y.com", "b": 1, "c": 2}], "_meta": {"columns": ["a", "b", "c"]}})
    )
    assert out["sample"] == [{"a": "x@y.com", "c": 2}]
    assert _as_dict(privacy.features("other", {"sample": [{"a": 1, "b": 1}], "_meta": {}}))["sample"] == [{}]


def test_strings_outside_tables_are_scrubbed_and_counted_unnamed() -> None:
    privacy = Privacy()
    assert privacy.features("m", "mail a@b.com") == "mail [email]"
    out = _as_dict(privacy.features("m", _features(["to a@b.com", "hi"])))
    # A list of texts is sent as descriptor rows, with the texts themselves in _meta: those are scrubbed.
    assert sorted(out["_meta"]["texts"]) == ["hi", "to [email]"]
    assert privacy.redactions.snapshot() == {"m": {"-": {"email": 2}}}


def test_scrubbing_can_be_turned_off() -> None:
    assert Privacy(scrub_values=False).features("m", "mail a@b.com") == "mail a@b.com"


def test_before_send_runs_last_and_a_failing_hook_sends_no_features(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Any] = []

    def hook(model: str, features: Any) -> Any:
        seen.append((model, features))
        return {"redacted": True}

    assert Privacy(before_send=hook).features("m", "a@b.com") == {"redacted": True}
    assert seen == [("m", "[email]")]

    def broken(model: str, features: Any) -> Any:
        raise RuntimeError("boom")

    assert Privacy(before_send=lambda model, features: None).features("m", "x") is WITHHELD
    privacy = Privacy(before_send=broken)
    assert privacy.features("m", "x") is WITHHELD
    assert privacy.features("m", "y") is WITHHELD
    assert sum("before_send raised" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize(
    "rules",
    [
        {"a": "delete"},
        {"a": "round:x"},
        {"a": "bucket:0"},
        {"a": "bucket:-1"},
        {"re:(": "drop"},
        {"": "drop"},
        {"a": 1},
    ],
)
def test_a_bad_policy_fails_at_once(rules: Any) -> None:
    with pytest.raises(PolicyError):
        ColumnPolicies(rules, hash_key=KEY)


def test_hash_without_a_key_fails_at_once_naming_the_variable() -> None:
    with pytest.raises(PolicyError, match="AITHER_HASH_KEY"):
        ColumnPolicies({"customer_id": "hash"})


def test_init_refuses_a_bad_policy_at_once() -> None:
    import aither

    with pytest.raises(PolicyError, match="unknown policy"):
        aither.init(column_policies={"email": "erase"})
    with pytest.raises(PolicyError, match="AITHER_HASH_KEY"):
        aither.init(column_policies={"email": "hash"})


def test_the_built_in_remote_default_is_warned_about_at_the_first_send_once_and_a_chosen_endpoint_never(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aither
    from aither import _client
    from aither._config import load_settings
    from aither._export import _delivery
    from aither._export._transport import HttpTransport
    from aither._export._worker import BatchExporter
    from aither.testing import OTLPReceiver

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if "built-in default" in r.getMessage()]

    monkeypatch.setattr(_delivery, "_warned_default_remote", False)
    for chosen in (
        load_settings(environ={"AITHER_BASE_URL": "https://models.example.com"}),
        load_settings(environ={}, base_url="http://10.1.2.3:4318"),
    ):
        assert not chosen.is_default_remote(chosen.traces_url)
    previous = _client.get_client()  # made while AITHER_BASE_URL still points at a closed local port
    monkeypatch.delenv("AITHER_BASE_URL", raising=False)
    with OTLPReceiver() as receiver:
        # Spans for the built-in default; the counts (whatever earlier tests left to report) to the receiver.
        client = _client.init(api_key="aith_k", flush_interval=0.05, metrics_endpoint=f"{receiver.url}/v1/metrics")
        try:
            settings = client.settings
            assert settings.is_default_remote(settings.traces_url)
            assert not settings.is_default_remote(settings.metrics_url)
            # A client that has sent no span yet (live_server() makes one to restore later) has not warned.
            assert warnings() == []
            # The default endpoint's connection goes to the receiver: nothing in this test leaves 127.0.0.1.
            exporter = client.exporter
            assert isinstance(exporter, BatchExporter)
            exporter._delivery.traces.transport = HttpTransport(receiver.url, {})
            model = aither.wrap(lambda x: x, name="default-endpoint")
            model(1)
            assert aither.flush(5)
            model(2)
            assert aither.flush(5)
            assert len(receiver.wait_for_spans(2)) >= 2
        finally:
            client.exporter.close(timeout=5)
            _client.restore(previous)
    (warning,) = warnings()
    assert "AITHER_BASE_URL" in warning and "https://aither.computer" in warning


def test_policies_and_scrubbing_apply_to_what_goes_on_the_wire(monkeypatch: pytest.MonkeyPatch) -> None:
    pd = pytest.importorskip("pandas")
    import aither
    from aither.testing import OTLPReceiver

    monkeypatch.setenv("AITHER_HASH_KEY", "wire-test")
    frame = pd.DataFrame(
        {"email": ["a@b.com", "c@d.org"], "customer_id": ["c-1", "c-2"], "note": ["mail x@y.com", "ok"], "n": [1, 2]}
    )
    with OTLPReceiver() as receiver:
        aither.init(
            api_key="aith_k",
            base_url=receiver.url,
            flush_interval=0.05,
            compression="none",
            column_policies={"email": "drop", "customer_*": "hash"},
        )
        aither.log_prediction("private", frame, [0, 1])
        assert aither.flush(5)
        (span,) = receiver.wait_for_spans(1)
        raw = b"".join(request.body for request in receiver.requests)
        stats = aither.stats()
    # Nothing of the dropped column or the scrubbed address is anywhere in what was sent.
    for secret in (b"a@b.com", b"c@d.org", b"x@y.com", b"c-1", b"c-2"):
        assert secret not in raw
    rows = span.features["sample"]
    assert all("email" not in row for row in rows)
    assert "email" not in span.features["_meta"]["columns"]
    assert sorted(row["note"] for row in rows) == ["mail [email]", "ok"]
    assert all(row["customer_id"].startswith("h:") for row in rows)
    assert stats["redactions"] == {"private": {"note": {"email": 1}}}


def test_a_reference_table_gets_the_live_samples_treatment() -> None:
    pd = pytest.importorskip("pandas")
    from aither._privacy._reference import private_table

    privacy = Privacy(ColumnPolicies({"email": "drop", "id": "hash", "age": "bucket:10"}, hash_key=KEY))
    frame = pd.DataFrame({"email": ["a@b.com"], "id": ["c-1"], "age": [37], "note": ["ip 10.0.0.1"]})
    out = private_table(frame, privacy, "m")
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["id", "age", "note"]
    live = _as_dict(privacy.features("m", _features(frame)))["sample"][0]
    assert out.iloc[0].to_dict() == live == {"id": live["id"], "age": 30, "note": "ip [ip]"}
    columns = private_table({"email": ["a@b.com"], "id": ["c-1"], "age": [37], "note": ["x"]}, privacy, "m")
    assert columns == {"id": [live["id"]], "age": [30], "note": ["x"]}
    records = private_table([{"email": "a@b.com", "id": "c-1", "note": "a@b.com"}], privacy, "m")
    assert records == [{"id": live["id"], "note": "[email]"}]


def test_a_models_own_policies_apply_to_its_spans_only(monkeypatch: pytest.MonkeyPatch) -> None:
    pd = pytest.importorskip("pandas")
    import aither
    from aither.testing import OTLPReceiver

    class Echo:
        def predict(self, X: Any) -> list[int]:
            return [0] * len(X)

    with pytest.raises(PolicyError):
        aither.wrap(Echo(), name="bad", column_policies={"email": "shred"})
    frame = pd.DataFrame({"email": ["a@b.com"], "n": [1]})
    with OTLPReceiver() as receiver:
        aither.init(
            api_key="aith_k", base_url=receiver.url, flush_interval=0.05, compression="none", scrub_values=False
        )
        aither.wrap(Echo(), name="strict", column_policies={"email": "drop"}).predict(frame)
        aither.wrap(Echo(), name="open").predict(frame)
        assert aither.flush(5)
        spans = {span.model_name: span for span in receiver.wait_for_spans(2)}
    assert spans["strict"].features["sample"] == [{"n": 1}]
    assert spans["open"].features["sample"] == [{"email": "a@b.com", "n": 1}]


def test_a_reference_calls_rules_stack_on_the_models_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from aither._privacy import _apply, register_model_policies

    monkeypatch.setattr(_apply, "_model_policies", {})
    register_model_policies("m", ColumnPolicies({"email": "drop"}))
    privacy = Privacy(ColumnPolicies({"note": "drop"}))
    privacy.register("m", ColumnPolicies({"id": "hash"}, hash_key=KEY))
    out = _as_dict(
        privacy.features("m", {"sample": [{"email": "a@b.com", "note": "x", "id": "c-1", "n": 1}], "_meta": {}})
    )
    assert set(out["sample"][0]) == {"id", "n"} and out["sample"][0]["id"].startswith("h:")
