"""End to end: tracked.predict and a hand-placed callback arrive at a real OTLP receiver."""

from __future__ import annotations

import numpy as np
from keras_helpers import logged, make_mlp, rows

import aither
import aither_tf
from aither.testing import OTLPReceiver


def test_predictions_arrive_at_the_receiver(aither_receiver: OTLPReceiver) -> None:
    model = make_mlp()
    tracked = aither.wrap(model, name="churn", version="4", environment="prod", sample_rows=1)
    x = rows(6)
    out = tracked.predict(x, batch_size=4, verbose=0)
    model.predict(x, callbacks=[aither_tf.Callback("churn_by_hand")], verbose=0)
    assert aither.flush(timeout=10)
    spans = {s.model_name: s for s in aither_receiver.wait_for_spans(2)}
    assert set(spans) == {"churn", "churn_by_hand"}
    span = spans["churn"]
    assert span.name == "predict" and span.kind == 1 and not span.is_error
    assert span.attributes["ml.framework"] == "tensorflow"
    assert span.attributes["ml.model.version"] == "4" and span.attributes["ml.environment"] == "prod"
    assert span.attributes["ml.batch_size"] == 6
    assert span.features["_meta"]["shape"] == [6, 4]
    np.testing.assert_array_equal(np.asarray(logged(span.prediction), dtype=np.float32), out)
    assert spans["churn_by_hand"].attributes["ml.batch_size"] == 6
    assert spans["churn_by_hand"].features["_meta"]["type"] == "unavailable"
