"""tracked.predict (logged from its return value), the hand-placed Keras callback, direct calls, inputs, saving."""

from __future__ import annotations

import pathlib
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras_helpers import logged, make_mlp, make_two_headed, rows

import aither
import aither_tf
from aither.testing import SpanCapture


class Recorder(keras.callbacks.Callback):  # type: ignore[misc]  # keras and tf ship no types
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.ended = 0

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.batches.append(batch)

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        self.ended += 1


def test_predict_keeps_the_users_callbacks_and_leaves_their_list_alone(aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(make_mlp(), name="m")
    mine = Recorder()
    callbacks = [mine]
    tracked.predict(rows(10), batch_size=4, callbacks=callbacks, verbose=0)
    tracked.predict(rows(10), 4, 0, None, callbacks)  # callbacks passed positionally
    assert callbacks == [mine]
    assert mine.batches == [0, 1, 2, 0, 1, 2] and mine.ended == 2
    assert len(aither_capture.predictions()) == 2


def test_a_users_callback_list_object_is_passed_through_untouched(aither_capture: SpanCapture) -> None:
    model = make_mlp()
    tracked = aither.wrap(model, name="m")
    mine = Recorder()
    callback_list = keras.callbacks.CallbackList([mine], model=model)
    tracked.predict(rows(3), callbacks=callback_list, verbose=0)
    assert callback_list.callbacks == [mine]
    assert mine.ended == 1 and len(aither_capture.predictions()) == 1


def test_predict_samples_features_from_x_and_logs_the_returned_prediction(aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(make_mlp(), name="m", sample_rows=2)
    x = rows(70)
    out = tracked.predict(x, batch_size=32, verbose=0)
    (span,) = aither_capture.predictions()
    assert span.attributes["ml.batch_size"] == 70
    assert span.features["_meta"]["shape"] == [70, 4]
    drawn = span.features["_meta"]["rows"]  # drawn at random: the sample is those rows of x
    assert len(drawn) == 2 and [list(r.values()) for r in span.features["sample"]] == x[drawn].tolist()
    np.testing.assert_array_equal(np.asarray(logged(span.prediction), dtype=np.float32), out)
    assert span.end_ns > span.start_ns


def test_the_prediction_keeps_rows_only_up_to_the_cap(aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(make_mlp(), name="m")
    out = tracked.predict(rows(1300), batch_size=256, verbose=0)
    (record,) = aither_capture.records
    assert record.prediction is not None
    assert record.prediction.data[0].data[0].shape == (1000, 3)  # rows past the cap are counted, not copied
    (span,) = aither_capture.predictions()
    assert span.prediction["_meta"] == {"output": "logits", "truncated": True, "total_rows": 1300}
    np.testing.assert_array_equal(np.asarray(span.prediction["values"], dtype=np.float32), out[:1000])


def test_a_multi_output_prediction_keeps_rows_only_up_to_the_cap(aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(make_two_headed(), name="m")
    out = tracked.predict({"amount": rows(1100, 1), "country": rows(1100, 3)}, batch_size=256, verbose=0)
    (span,) = aither_capture.predictions()
    assert span.prediction["_meta"] == {"truncated": True, "total_rows": 1100}
    assert set(span.prediction["values"]) == {"fraud", "score"}
    score = np.asarray(span.prediction["values"]["score"], dtype=np.float32)
    np.testing.assert_array_equal(score, out["score"][:1000])


class SpyMLP(keras.Sequential):  # type: ignore[misc]  # keras and tf ship no types
    """A real Keras model that remembers the ``callbacks`` each ``predict`` was given."""

    seen: list[Any]

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(kwargs.get("callbacks", args[3] if len(args) > 3 else None))
        return super().predict(x, *args, **kwargs)


def _spy_mlp() -> SpyMLP:
    keras.utils.set_random_seed(0)
    model = SpyMLP([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
    model.seen = []
    return model


def test_tracked_predict_adds_no_callback_and_logs_one_span_from_its_return_value(
    aither_capture: SpanCapture,
) -> None:
    # No aither callback in predict: any on_predict_batch_end turns off Keras' asynchronous dispatch.
    model = _spy_mlp()
    tracked = aither.wrap(model, name="m", sample_rows=3, sample_columns=2)
    mine = Recorder()
    x = rows(40)
    out = tracked.predict(x, batch_size=16, verbose=0)
    tracked.predict(x, 16, 0, None, [mine])
    assert model.seen[0] is None and model.seen[1] == [mine]
    assert mine.batches == [0, 1, 2]
    first, second = aither_capture.predictions()
    assert first.name == "predict" and not first.is_error
    assert first.attributes["ml.batch_size"] == 40
    assert first.features["_meta"]["shape"] == [40, 4] and first.features["_meta"]["truncated"] is True
    drawn = first.features["_meta"]["rows"]  # drawn at random; the first call's window is the first 2 columns
    assert len(drawn) == 3 and [list(r.values()) for r in first.features["sample"]] == x[drawn, :2].tolist()
    np.testing.assert_array_equal(np.asarray(logged(first.prediction), dtype=np.float32), out)
    assert tracked.trace_ids == [first.trace_id, second.trace_id]


def test_the_logged_prediction_is_a_copy_of_the_returned_rows(aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(make_mlp(), name="m")
    out = tracked.predict(rows(3), verbose=0)
    expected = out.copy()
    out[:] = 0  # the caller owns the array: writing into it must not change what is exported
    (span,) = aither_capture.predictions()
    np.testing.assert_array_equal(np.asarray(logged(span.prediction), dtype=np.float32), expected)


def test_a_hand_placed_callback_passed_to_tracked_predict_logs_its_own_span(aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(make_mlp(), name="wrapped")
    callback = aither_tf.Callback("by_hand")
    out = tracked.predict(rows(5), callbacks=[callback], verbose=0)
    spans = {span.model_name: span for span in aither_capture.predictions()}
    assert set(spans) == {"wrapped", "by_hand"}
    for span in spans.values():
        assert span.attributes["ml.batch_size"] == 5
        np.testing.assert_array_equal(np.asarray(logged(span.prediction), dtype=np.float32), out)
    assert spans["wrapped"].features["_meta"]["shape"] == [5, 4]
    assert spans["by_hand"].features["_meta"]["type"] == "unavailable"


def test_a_hand_placed_callback_logs_each_predict_and_says_it_cannot_see_the_input(
    aither_capture: SpanCapture,
) -> None:
    model = make_mlp()
    callback = aither_tf.Callback("by_hand", version="2", environment="prod")
    out = model.predict(rows(10), batch_size=4, callbacks=[callback], verbose=0)
    model.predict(rows(3), callbacks=[callback], verbose=0)
    first, second = aither_capture.predictions()
    assert first.name == "predict" and first.model_name == "by_hand"
    assert first.attributes["ml.model.version"] == "2" and first.attributes["ml.environment"] == "prod"
    assert first.attributes["ml.framework"] == "tensorflow"
    assert first.attributes["ml.batch_size"] == 10
    assert first.features["_meta"]["type"] == "unavailable"
    assert first.features["_meta"]["shape"] == [10] and first.features["_meta"]["batches"] == 3
    np.testing.assert_array_equal(np.asarray(logged(first.prediction), dtype=np.float32), out)
    assert second.attributes["ml.batch_size"] == 3
    assert callback.trace_ids == [first.trace_id, second.trace_id]
    assert callback.last_trace_id == second.trace_id == aither.last_trace_id()


def test_dict_inputs_and_multi_output_models_are_sampled(aither_capture: SpanCapture) -> None:
    model = make_two_headed()
    tracked = aither.wrap(model, name="m")
    x = {"amount": rows(6, 1), "country": rows(6, 3)}
    out = tracked.predict(x, batch_size=4, verbose=0)
    tracked(x)
    predicted, called = aither_capture.predictions()
    for span in (predicted, called):
        assert span.features["_meta"]["type"] == "dict"
        assert span.features["_meta"]["keys"] == ["amount", "country"]
        assert span.attributes["ml.batch_size"] == 6
    assert set(predicted.prediction) == {"fraud", "score"}
    np.testing.assert_array_equal(np.asarray(predicted.prediction["score"], dtype=np.float32), out["score"])
    assert len(called.prediction["fraud"]) == 6


def test_tf_tensor_inputs_record_dtype_shape_and_device(aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(make_mlp(), name="m", sample_rows=2)
    x = tf.constant(rows(5))
    tracked(x)
    tracked.predict(x, verbose=0)
    for span in aither_capture.predictions():
        meta = span.features["_meta"]
        assert meta["type"] == "tensorflow.Tensor"
        assert meta["shape"] == [5, 4] and meta["dtype"] == "float32" and "CPU" in meta["device"]
        drawn = meta["rows"]  # a 2-D tensor is a table: random rows, one column per feature
        assert span.features["sample"] == [dict(zip("0123", x.numpy()[i].tolist(), strict=True)) for i in drawn]


def test_a_dataset_input_is_described_by_its_type_and_rows(aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(make_mlp(), name="m")
    dataset = tf.data.Dataset.from_tensor_slices(rows(9)).batch(4)
    tracked.predict(dataset, verbose=0)
    (span,) = aither_capture.predictions()
    assert span.attributes["ml.batch_size"] == 9
    assert "Dataset" in span.features["_meta"]["type"] and span.features["_meta"]["shape"] == [9]


def test_a_failing_predict_is_an_error_span_and_the_users_callbacks_are_untouched(
    aither_capture: SpanCapture,
) -> None:
    tracked = aither.wrap(make_mlp(), name="m")
    mine = Recorder()
    with pytest.raises(ValueError):
        tracked.predict(np.ones((2, 99), dtype=np.float32), callbacks=[mine], verbose=0)
    (span,) = aither_capture.predictions()
    assert span.is_error and span.status_message.startswith("ValueError")
    tracked.predict(rows(2), callbacks=[mine], verbose=0)
    assert mine.ended == 1 and len(aither_capture.predictions()) == 2


def test_predict_on_batch_is_logged(aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(make_mlp(), name="m")
    tracked.predict_on_batch(rows(3))
    (span,) = aither_capture.predictions()
    assert span.name == "predict_on_batch" and span.attributes["ml.batch_size"] == 3


def test_saving_a_wrapped_model_is_unaffected(tmp_path: pathlib.Path, aither_capture: SpanCapture) -> None:
    model = make_mlp()
    tracked = aither.wrap(model, name="m")
    x = rows(4)
    expected = tracked.predict(x, verbose=0)
    path = tmp_path / "model.keras"
    tracked.save(path)
    weights = tmp_path / "model.weights.h5"
    tracked.save_weights(weights)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    fresh = make_mlp()
    fresh.load_weights(weights)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), expected)
    assert [w.tolist() for w in loaded.get_weights()] == [w.tolist() for w in model.get_weights()]
    assert len(aither_capture.predictions()) == 1  # the loaded model is a plain model


def test_wrapping_a_tf_module_logs_its_calls(aither_capture: SpanCapture) -> None:
    class Scale(tf.Module):  # type: ignore[misc]  # keras and tf ship no types
        def __call__(self, x: tf.Tensor) -> tf.Tensor:
            return x * 2.0

    tracked = aither.wrap(Scale(), name="scale")
    tracked(tf.constant(rows(3)))
    (span,) = aither_capture.predictions()
    assert span.name == "__call__" and span.attributes["ml.framework"] == "tensorflow"
    assert span.attributes["ml.batch_size"] == 3
