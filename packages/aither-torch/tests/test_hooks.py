"""What the forward hooks log, and what they leave alone."""

from __future__ import annotations

import io
import threading
from typing import Any

import numpy as np
import pytest
import torch
from torch_helpers import DictBatchModel, Failing, WithPredict, make_mlp

import aither
import aither_torch
from aither.integrations import render
from aither.testing import SpanCapture
from aither_torch._hooks import ELEMENT_BUDGET


def test_module_call_tracked_call_and_predict_each_log_exactly_one_span(
    mlp: torch.nn.Module, aither_capture: SpanCapture
) -> None:
    tracked = aither.wrap(mlp, name="m")
    x = torch.randn(3, 4)
    tracked(x)
    tracked.predict(x)
    mlp(x)
    spans = aither_capture.predictions()
    assert [s.name for s in spans] == ["forward"] * 3
    assert tracked.trace_ids == [s.trace_id for s in spans]
    assert all(s.attributes["ml.batch_size"] == 3 for s in spans)


def test_a_modules_own_predict_logs_once(aither_capture: SpanCapture) -> None:
    model = WithPredict().eval()
    tracked = aither.wrap(model, name="m")
    labels = tracked.predict(torch.randn(5, 4))
    assert labels.shape == (5,)
    (span,) = aither_capture.predictions()  # the inner self.net call is a submodule: no span of its own
    # The span is forward's (the hook's): the logits of the five rows, read as class scores.
    assert span.prediction["_meta"]["output"] == "logits" and len(span.prediction["values"]) == 5


def test_nested_submodule_calls_do_not_log(mlp: torch.nn.Module, aither_capture: SpanCapture) -> None:
    aither.wrap(mlp, name="m")
    mlp(torch.randn(2, 4))
    (span,) = aither_capture.predictions()
    assert span.prediction is not None and len(span.prediction) == 2
    assert span.features["_meta"]["shape"] == [2, 4]


def test_a_wrapped_submodule_logs_under_its_own_name(mlp: torch.nn.Sequential, aither_capture: SpanCapture) -> None:
    aither.wrap(mlp, name="outer")
    aither.wrap(mlp[0], name="first_layer")
    mlp(torch.randn(2, 4))
    assert sorted(str(s.model_name) for s in aither_capture.predictions()) == ["first_layer", "outer"]


def test_unwrap_removes_the_hooks(mlp: torch.nn.Module, aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(mlp, name="m")
    assert tracked.unwrap() is mlp
    mlp(torch.randn(2, 4))
    assert aither_capture.predictions() == []
    assert not aither_torch.is_wrapped(mlp)
    assert not mlp._forward_hooks and not mlp._forward_pre_hooks
    assert not mlp._forward_hooks_with_kwargs and not mlp._forward_hooks_always_called


def test_wrapping_the_same_module_twice_logs_once_under_the_latest_name(
    mlp: torch.nn.Module, aither_capture: SpanCapture
) -> None:
    first = aither.wrap(mlp, name="first")
    aither.wrap(mlp, name="second")
    mlp(torch.randn(2, 4))
    assert [s.model_name for s in aither_capture.predictions()] == ["second"]
    first.unwrap()  # the first wrapper's hooks are gone already: this must not remove the second's
    assert aither_torch.is_wrapped(mlp)


def test_user_hooks_still_run_and_see_the_same_output(mlp: torch.nn.Module, aither_capture: SpanCapture) -> None:
    seen: list[torch.Tensor] = []
    mlp.register_forward_hook(lambda module, args, output: seen.append(output))
    aither.wrap(mlp, name="m")
    out = mlp(torch.randn(2, 4))
    assert seen[0] is out
    assert len(aither_capture.predictions()) == 1


def test_dict_batch_inputs_and_nested_outputs_are_sampled(aither_capture: SpanCapture) -> None:
    model = DictBatchModel().eval()
    aither.wrap(model, name="m", sample_rows=2)
    batch = {"input_ids": torch.randint(0, 50, (7, 5)), "attention_mask": torch.ones(7, 5)}
    out = model(**batch)
    (span,) = aither_capture.predictions()
    features = span.features
    assert features["_meta"]["type"] == "dict"
    assert features["_meta"]["keys"] == ["input_ids", "attention_mask"]
    ids = features["sample"]["input_ids"]
    rows = ids["_meta"]["rows"]
    assert ids["_meta"] == {
        "type": "torch.Tensor",
        "shape": [7, 5],
        "dtype": "int64",
        "device": "cpu",
        "rows": rows,
        "columns": ["0", "1", "2", "3", "4"],
        "dtypes": dict.fromkeys(["0", "1", "2", "3", "4"], "int64"),
        "truncated": True,
    }
    assert len(rows) == 2  # a 2-D tensor is a table: two random rows, one column per feature
    assert ids["sample"] == [dict(zip("01234", batch["input_ids"][i].tolist(), strict=True)) for i in rows]
    assert span.attributes["ml.batch_size"] == 7
    prediction = span.prediction
    assert prediction["logits"] == out["logits"].tolist()
    hidden, pooled = prediction["hidden"]
    assert len(hidden) == 7 and pooled == out["hidden"][1].tolist()


def test_several_positional_arguments_become_a_dict_of_features(aither_capture: SpanCapture) -> None:
    model = DictBatchModel().eval()
    aither.wrap(model, name="m")
    model(torch.randint(0, 50, (3, 4)), torch.ones(3, 4))
    (span,) = aither_capture.predictions()
    assert span.features["_meta"]["keys"] == ["0", "1"]
    assert span.attributes["ml.batch_size"] == 3


def test_features_record_dtype_shape_and_device_and_keep_only_the_sample(aither_capture: SpanCapture) -> None:
    model = make_mlp(inputs=64)
    aither.wrap(model, name="m", sample_rows=3, sample_columns=5)
    x = torch.randn(1000, 64, dtype=torch.float32)
    model(x)
    (record,) = aither_capture.records
    assert record.features is not None
    head = record.features.data[0]
    assert tuple(head.shape) == (3, 5)  # only the slice was copied, not the batch
    assert head.base is None  # a CPU sample is copied out through numpy: its own buffer, not a view of x
    assert not np.shares_memory(head, x.numpy())
    x.mul_(0)  # the caller reusing its buffer does not change what is sent
    (span,) = aither_capture.predictions()
    meta = span.features["_meta"]
    assert {k: meta[k] for k in ("type", "shape", "dtype", "device", "truncated")} == {
        "type": "torch.Tensor",
        "shape": [1000, 64],
        "dtype": "float32",
        "device": "cpu",
        "truncated": True,
    }
    assert len(meta["rows"]) == 3 and len(meta["columns"]) == 64  # three random rows; the whole schema
    assert any(value != 0 for row in span.features["sample"] for value in row.values())
    assert len(span.prediction["values"]) == 1000


def test_wide_outputs_keep_rows_only_up_to_the_element_budget(aither_capture: SpanCapture) -> None:
    vocab = 1024
    model = torch.nn.Linear(4, vocab)
    aither.wrap(model, name="lm_head")
    with torch.no_grad():
        model(torch.randn(64, 4))
    (record,) = aither_capture.records
    assert record.prediction is not None
    head = record.prediction.data[0].data[0]  # the capture, inside its reading as logits
    assert head.shape == (ELEMENT_BUDGET // vocab, vocab)  # not 64 rows of the vocabulary
    rendered = render(record.prediction)
    assert rendered["_meta"] == {"output": "logits", "truncated": True, "total_rows": 64}
    assert len(rendered["values"]) == ELEMENT_BUDGET // vocab


def test_prediction_rows_are_capped_with_a_truncation_marker(aither_capture: SpanCapture) -> None:
    model = torch.nn.Linear(2, 1)
    aither.wrap(model, name="m")
    with torch.no_grad():
        model(torch.randn(1500, 2))
    (span,) = aither_capture.predictions()
    assert span.prediction["_meta"] == {"truncated": True, "total_rows": 1500}
    assert len(span.prediction["values"]) == 1000


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode, torch.enable_grad])
def test_works_under_every_grad_mode(mlp: torch.nn.Module, mode: Any, aither_capture: SpanCapture) -> None:
    aither.wrap(mlp, name="m")
    x = torch.randn(2, 4)
    with mode():
        out = mlp(x)
    (span,) = aither_capture.predictions()
    assert span.prediction["values"] == out.tolist()
    assert not span.is_error


def test_gradients_still_flow_through_a_wrapped_module(mlp: torch.nn.Module, aither_capture: SpanCapture) -> None:
    aither.wrap(mlp, name="m")
    mlp(torch.randn(2, 4)).sum().backward()
    assert all(p.grad is not None for p in mlp.parameters())


def test_state_dict_keys_and_values_are_unchanged(mlp: torch.nn.Module, aither_capture: SpanCapture) -> None:
    before = {k: v.clone() for k, v in mlp.state_dict().items()}
    tracked = aither.wrap(mlp, name="m")
    tracked(torch.randn(2, 4))
    after = tracked.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_torch_save_of_the_state_dict_and_of_the_whole_module(
    mlp: torch.nn.Module, aither_capture: SpanCapture
) -> None:
    tracked = aither.wrap(mlp, name="m")
    x = torch.randn(2, 4)
    expected = tracked(x)

    buffer = io.BytesIO()
    torch.save(tracked.state_dict(), buffer)
    buffer.seek(0)
    fresh = make_mlp()
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(fresh(x), expected)

    buffer = io.BytesIO()
    torch.save(mlp, buffer)  # the hooks are picklable objects, no closures
    buffer.seek(0)
    restored = torch.load(buffer, weights_only=False)
    aither_capture.clear()
    assert torch.equal(restored(x), expected)
    assert [s.model_name for s in aither_capture.predictions()] == ["m"]  # still wrapped, as saved
    aither_torch.unwrap(restored)
    restored(x)
    assert len(aither_capture.predictions()) == 1


def test_a_raising_module_raises_unchanged_and_logs_an_error_span(aither_capture: SpanCapture) -> None:
    model = Failing()
    tracked = aither.wrap(model, name="m")
    for call in (model, tracked, tracked.predict):
        with pytest.raises(ValueError, match="cannot score a batch of 2") as info:
            call(torch.randn(2, 4))
        assert info.value.__traceback__ is not None
    spans = aither_capture.predictions()
    assert len(spans) == 3
    for span in spans:
        assert span.is_error
        assert span.status_message == "ValueError: cannot score a batch of 2"
        assert "ml.prediction" not in span.attributes
        assert span.features["_meta"]["shape"] == [2, 4]


def test_a_call_made_while_handling_another_exception_is_not_an_error(
    mlp: torch.nn.Module, aither_capture: SpanCapture
) -> None:
    aither.wrap(mlp, name="m")
    try:
        raise KeyError("unrelated")
    except KeyError:
        mlp(torch.randn(2, 4))
    (span,) = aither_capture.predictions()
    assert not span.is_error
    assert span.prediction is not None


def test_a_failing_call_leaves_later_calls_correct(aither_capture: SpanCapture) -> None:
    model = make_mlp()
    aither.wrap(model, name="m")
    with pytest.raises(RuntimeError):
        model(torch.randn(2, 99))
    model(torch.randn(3, 4))
    first, second = aither_capture.predictions()
    assert first.is_error and not second.is_error
    assert second.attributes["ml.batch_size"] == 3
    assert second.start_ns > first.start_ns


def test_concurrent_threads_each_log_their_own_calls(mlp: torch.nn.Module, aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(mlp, name="m")
    ids: dict[int, list[str | None]] = {}

    def serve(rows: int) -> None:
        for _ in range(20):
            mlp(torch.randn(rows, 4))
        ids[rows] = [tracked.last_trace_id]

    threads = [threading.Thread(target=serve, args=(rows,)) for rows in (1, 2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spans = aither_capture.predictions()
    assert len(spans) == 80
    assert not any(s.is_error for s in spans)
    for span in spans:  # each span's output belongs to its own input
        assert len(span.prediction["values"]) == span.attributes["ml.batch_size"]
    assert len({v[0] for v in ids.values()}) == 4


def test_torch_compile_fires_a_hook_registered_before_the_first_compiled_call_on_every_call(
    aither_capture: SpanCapture,
) -> None:
    model = make_mlp()
    aither.wrap(model, name="compiled")
    compiled = torch.compile(model)
    outputs = [compiled(torch.full((2, 4), float(i))) for i in range(3)]
    spans = aither_capture.predictions()
    assert len(spans) == 3
    assert [s.prediction["values"] for s in spans] == [o.tolist() for o in outputs]
    starts = [s.start_ns for s in spans]
    assert starts == sorted(starts) and len(set(starts)) == 3  # real times, not values traced into the graph


def test_torch_compile_logs_calls_made_after_wrapping_an_already_compiled_module(
    aither_capture: SpanCapture,
) -> None:
    model = make_mlp()
    compiled = torch.compile(model)
    compiled(torch.randn(2, 4))
    aither.wrap(model, name="late")
    compiled(torch.randn(2, 4))
    compiled(torch.randn(2, 4))
    assert [s.model_name for s in aither_capture.predictions()] == ["late", "late"]


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torchscript_falls_back_to_logging_calls_through_the_wrapper(aither_capture: SpanCapture) -> None:
    scripted = torch.jit.script(make_mlp())
    tracked = aither.wrap(scripted, name="scripted")
    assert isinstance(tracked, aither_torch.TrackedCall)
    x = torch.randn(2, 4)
    tracked(x)
    tracked.predict(x)
    scripted(x)  # TorchScript runs no Python hooks: a direct call is not logged (documented)
    spans = aither_capture.predictions()
    assert [s.name for s in spans] == ["forward", "forward"]
    with pytest.raises(RuntimeError):
        tracked(torch.randn(2, 99))
    assert aither_capture.predictions()[-1].is_error


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; this machine has none")
def test_cuda_inputs_and_outputs_are_sliced_on_the_device_and_record_it(aither_capture: SpanCapture) -> None:
    model = make_mlp().cuda()
    aither.wrap(model, name="gpu", sample_rows=2)
    stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
    with stream, torch.inference_mode():  # a non-default stream: the worker must wait for the slice's copy
        x = torch.randn(4096, 4, device="cuda")
        out = model(x)
    torch.cuda.synchronize()
    (record,) = aither_capture.records
    assert record.features is not None
    head = record.features.data[0]
    assert head.device.type == "cuda" and tuple(head.shape) == (2, 4)  # sliced on the device
    (span,) = aither_capture.predictions()
    assert span.features["_meta"]["device"] == "cuda:0"
    assert span.features["sample"] == x[:2].cpu().tolist()  # the same floats, copied: exact
    assert span.prediction["values"] == out[:1000].cpu().tolist()
    assert span.prediction["_meta"] == {"truncated": True, "total_rows": 4096}


class _ManyOutputs(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(x[:, :1] * i for i in range(40))


def test_a_tuple_output_cut_at_max_items_carries_the_wire_contracts_total_rows(aither_capture: SpanCapture) -> None:
    from aither_torch._hooks import MAX_ITEMS

    model = _ManyOutputs().eval()
    aither.wrap(model, name="m")
    model(torch.ones(2, 3))
    span = aither_capture.predictions()[-1]
    assert span.prediction["_meta"] == {"truncated": True, "total_rows": 40}
    assert len(span.prediction["values"]) == MAX_ITEMS
    assert span.prediction["values"][2] == [[2.0], [2.0]]
