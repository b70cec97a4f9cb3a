"""Every example of the user's SDK README runs as written.

Each code block is copied here verbatim (``SNIPPETS``) and run in its own Python process, with only the names it
takes for granted defined before it (``X_train``, ``load_model``...), against a real OTLP receiver on 127.0.0.1
(``AITHER_API_KEY`` / ``AITHER_BASE_URL`` set as a user would). The Management API blocks run against the real
aither server in tests/test_management.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from aither.testing import CapturedSpan, OTLPReceiver

SKLEARN_DATA = """
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
X_all, y_all = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X_all, y_all, random_state=0)
X = X_test
"""

SNIPPETS: dict[str, tuple[str, str, str]] = {
    # name: (what the block assumes exists, the README block verbatim, what the test then checks)
    "quick_start": (
        SKLEARN_DATA,
        """
import aither
from sklearn.ensemble import RandomForestClassifier

# Initialize
aither.init()  # Uses AITHER_API_KEY env var

# Train your model
model = RandomForestClassifier().fit(X_train, y_train)

# Wrap it - predictions are now logged automatically
tracked = aither.wrap(model, name="fraud_detector")

# Use normally
predictions = tracked.predict(X_test)

# Get trace_id for label correlation
trace_id = tracked.last_trace_id
""",
        "assert len(predictions) == len(X_test); print('TRACE', trace_id)",
    ),
    "explicit_init": (
        "import aither",
        """
aither.init(
    api_key="aith_your_api_key",
    base_url="https://aither.computer",
    flush_interval=1.0,
    batch_size=100,
)
""",
        # The hosted platform is unreachable from here: prove the settings took, then point back at the receiver.
        "s = aither._client.get_client().settings\n"
        "assert (s.base_url, s.flush_interval, s.batch_size) == ('https://aither.computer', 1.0, 100)\n"
        "import os; aither.init(base_url=os.environ['AITHER_BASE_URL'])\n"
        "print('TRACE', aither.log_prediction('after_init', {'a': 1}, 1))",
    ),
    "wrap_reference": (
        SKLEARN_DATA
        + """
import aither
from sklearn.ensemble import RandomForestClassifier
model = RandomForestClassifier(n_estimators=10).fit(X_train, y_train)
def custom_extractor(X):
    return {"rows": len(X)}
""",
        """
tracked = aither.wrap(
    model,                          # Any ML model
    name="fraud_detector",          # Required: model identifier
    version="1.2.3",                # Optional: model version
    environment="production",       # Optional: deployment env
    sample_rows=5,                  # Max rows to sample (default: 5)
    sample_columns=10,              # Max columns to sample (default: 10)
    features_fn=custom_extractor,   # Custom feature extraction
)

# Use the wrapped model normally
result = tracked.predict(X)
result = tracked(X)                 # Also works
probs = tracked.predict_proba(X)    # Also tracked

# Access trace_id for label correlation
trace_id = tracked.last_trace_id
all_trace_ids = tracked.trace_ids   # All predictions

# Access underlying model
tracked.model                       # Original model
tracked.classes_                    # Passthrough to model attributes
""",
        "assert tracked.model is model and list(tracked.classes_) == [0, 1]\n"
        "assert len(all_trace_ids) == 3 and all_trace_ids[-1] == trace_id\n"
        "print('TRACE', trace_id)",
    ),
    "log_prediction_and_label": (
        "import aither",
        """
trace_id = aither.log_prediction(
    model_name="my_pipeline",
    features={"amount": 150.0, "country": "US"},
    prediction=0.87,
    version="1.2.3",
    environment="production",
)
"""
        + """
aither.log_label(trace_id=trace_id, label=1)
""",
        "print('TRACE', trace_id)",
    ),
    "track_decorator": (
        SKLEARN_DATA
        + """
import aither
from sklearn.linear_model import LogisticRegression
model = LogisticRegression(max_iter=5000).fit(X_train, y_train)
""",
        """
@aither.track("my_function")
def predict(features):
    return model.predict(features)

result = predict(X)
trace_id = aither.last_trace_id()
""",
        "assert len(result) == len(X); print('TRACE', trace_id)",
    ),
    "feature_extraction_shape": (
        "",
        "",  # the README block is an illustration of the logged shape, not code: FEATURE_SHAPE_BLOCK below
        "import aither, numpy as np, pandas as pd\n"
        "frame = pd.DataFrame(np.full((50_000, 100), 1.5), columns=[f'col{i}' for i in range(1, 101)])\n"
        "frame['col2'] = 'A'\n"
        "class M:\n    def predict(self, X): return np.zeros(len(X))\n"
        "tracked = aither.wrap(M(), name='frame_model')\ntracked.predict(frame)\n"
        "print('TRACE', tracked.last_trace_id)",
    ),
    "custom_extraction": (
        SKLEARN_DATA
        + """
import aither
from sklearn.ensemble import RandomForestClassifier
model = RandomForestClassifier(n_estimators=10).fit(X_train, y_train)
""",
        """
def my_extractor(X):
    return {"shape": X.shape, "mean": X.mean()}

tracked = aither.wrap(model, name="m", features_fn=my_extractor)
""",
        "tracked.predict(X)\nprint('TRACE', tracked.last_trace_id)",
    ),
    "basic_model_wrapping": (
        SKLEARN_DATA,
        """
import aither
from sklearn.ensemble import RandomForestClassifier

aither.init()

model = RandomForestClassifier().fit(X_train, y_train)
tracked = aither.wrap(model, name="churn_predictor", version="1.0")

predictions = tracked.predict(X_test)
""",
        "print('TRACE', tracked.last_trace_id)",
    ),
    "pytorch_model": (
        "import torch\ninput_tensor = torch.randn(3, 4)\n",
        """
import aither
import torch

aither.init()

class MyNet(torch.nn.Module):
    def forward(self, x):
        return self.layers(x)

model = MyNet()
tracked = aither.wrap(model, name="my_net")

# Both work:
output = tracked(input_tensor)
output = tracked.predict(input_tensor)
""",
        "assert tuple(output.shape) == (3, 2)\nprint('TRACE', tracked.last_trace_id)",
    ),
    "ground_truth_correlation": (
        SKLEARN_DATA
        + """
import aither
from sklearn.ensemble import RandomForestClassifier
tracked = aither.wrap(RandomForestClassifier(n_estimators=10).fit(X_train, y_train), name="churn")
tracked.predict(X[:3])
prediction_ids = ["p0"]
_db = {}
def save_to_db(prediction_ids, trace_ids):
    _db.update(zip(prediction_ids, trace_ids[-len(prediction_ids):]))
def load_from_db():
    return list(_db.items())
def get_actual_outcome(pred_id):
    return 1
""",
        """
# At prediction time
predictions = tracked.predict(X)
trace_ids = tracked.trace_ids  # List of all trace IDs

# Store trace_ids with your predictions
save_to_db(prediction_ids, trace_ids)

# Later, when ground truth is known
for pred_id, trace_id in load_from_db():
    actual = get_actual_outcome(pred_id)
    aither.log_label(trace_id, actual)
""",
        "print('TRACE', trace_ids[-1])",
    ),
    "fastapi_integration": (
        SKLEARN_DATA
        + """
from sklearn.linear_model import LogisticRegression
class DictModel:
    \"\"\"What load_model() gives this service: a model taking the request's JSON dict.\"\"\"
    def __init__(self):
        self.inner = LogisticRegression(max_iter=5000).fit(X_train, y_train)
    def predict(self, data):
        return int(self.inner.predict([data["features"]])[0])
def load_model():
    return DictModel()
""",
        """
import aither
from fastapi import FastAPI

aither.init()
model = aither.wrap(load_model(), name="api_model")
app = FastAPI()

@app.post("/predict")
async def predict(data: dict):
    prediction = model.predict(data)
    return {
        "prediction": prediction,
        "trace_id": model.last_trace_id
    }

@app.post("/label")
async def label(trace_id: str, actual: int):
    aither.log_label(trace_id, actual)
    return {"status": "ok"}

@app.on_event("shutdown")
async def shutdown():
    aither.close()
""",
        "from fastapi.testclient import TestClient\n"
        "with TestClient(app) as client:\n"
        "    answer = client.post('/predict', json={'features': list(X[0])}).json()\n"
        "    assert client.post('/label', params={'trace_id': answer['trace_id'], 'actual': 1}).json() == "
        "{'status': 'ok'}\n"
        "print('TRACE', answer['trace_id'])",
    ),
}


# The README's "Feature Extraction" block (it has ``...`` placeholders, so it is not runnable code); the test
# below logs a real 50,000 x 100 frame and checks every key and value this illustration shows.
FEATURE_SHAPE_BLOCK = """
# Input: pandas DataFrame with 50,000 rows, 100 columns
# What gets logged:
{
    "sample": [
        {"col1": 1.5, "col2": "A", ...},  # 5 rows
        ...
    ],
    "_meta": {
        "type": "pandas.DataFrame",
        "shape": [50000, 100],
        "columns": ["col1", "col2", ...],
        "dtypes": {"col1": "float64", ...},
        "truncated": True
    }
}"""


@pytest.fixture(scope="module")
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as running:
        yield running


#: The README's ``MyNet`` uses ``self.layers`` without defining it: the one line of ours the example needs, placed
#: right after the model is built.
GLUE = {"pytorch_model": ("model = MyNet()\n", "model.layers = torch.nn.Linear(4, 2)\n")}


def _run(receiver: OTLPReceiver, name: str) -> tuple[str, list[CapturedSpan]]:
    prelude, snippet, check = SNIPPETS[name]
    if name in GLUE:
        after, line = GLUE[name]
        assert after in snippet
        snippet = snippet.replace(after, after + line)
    code = "\n".join([textwrap.dedent(prelude), textwrap.dedent(snippet), check])
    env = {**os.environ, "AITHER_API_KEY": "aith_readme_test", "AITHER_BASE_URL": receiver.url}
    env.pop("PYTEST_CURRENT_TEST", None)
    receiver.clear()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    trace_id = result.stdout.split("TRACE ")[-1].split()[0]
    return trace_id, receiver.spans  # the process has exited: atexit flushed everything


def test_quick_start(receiver: OTLPReceiver) -> None:
    trace_id, spans = _run(receiver, "quick_start")
    (span,) = spans
    assert span.trace_id == trace_id
    assert span.model_name == "fraud_detector"
    assert span.attributes["ml.framework"] == "sklearn"
    assert span.features["_meta"]["shape"][1] == 30


def test_explicit_initialization(receiver: OTLPReceiver) -> None:
    trace_id, spans = _run(receiver, "explicit_init")
    assert [s.trace_id for s in spans] == [trace_id]


def test_wrap_reference(receiver: OTLPReceiver) -> None:
    trace_id, spans = _run(receiver, "wrap_reference")
    assert [s.name for s in spans] == ["predict", "predict", "predict_proba"]
    assert spans[-1].trace_id == trace_id
    assert {s.attributes["ml.model.version"] for s in spans} == {"1.2.3"}
    assert {s.attributes["ml.environment"] for s in spans} == {"production"}
    assert spans[0].features == {"rows": 143}


def test_log_prediction_and_log_label(receiver: OTLPReceiver) -> None:
    trace_id, spans = _run(receiver, "log_prediction_and_label")
    prediction, label = spans
    assert prediction.trace_id == label.trace_id == trace_id
    assert prediction.prediction == 0.87
    assert label.label == 1


def test_track_decorator(receiver: OTLPReceiver) -> None:
    trace_id, spans = _run(receiver, "track_decorator")
    (span,) = spans
    assert span.trace_id == trace_id
    assert span.model_name == "my_function"
    assert span.name == "predict"


def test_feature_extraction_example_shape(receiver: OTLPReceiver) -> None:
    _, spans = _run(receiver, "feature_extraction_shape")
    features = spans[0].features
    assert len(features["sample"]) == 5
    assert features["sample"][0]["col1"] == 1.5
    assert features["sample"][0]["col2"] == "A"
    meta = features["_meta"]
    assert meta["type"] == "pandas.DataFrame"
    assert meta["shape"] == [50000, 100]
    assert meta["columns"][:2] == ["col1", "col2"]
    assert meta["dtypes"]["col1"] == "float64"
    assert meta["truncated"] is True


def test_custom_extraction(receiver: OTLPReceiver) -> None:
    _, spans = _run(receiver, "custom_extraction")
    assert spans[0].features["shape"] == [143, 30]
    assert isinstance(spans[0].features["mean"], float)


def test_basic_model_wrapping(receiver: OTLPReceiver) -> None:
    trace_id, spans = _run(receiver, "basic_model_wrapping")
    assert [(s.model_name, s.attributes["ml.model.version"], s.trace_id) for s in spans] == [
        ("churn_predictor", "1.0", trace_id)
    ]


def test_pytorch_model(receiver: OTLPReceiver) -> None:
    trace_id, spans = _run(receiver, "pytorch_model")
    assert [s.name for s in spans] == ["forward", "forward"]  # each call logged once, predict included
    assert spans[-1].trace_id == trace_id
    assert spans[0].attributes["ml.framework"] == "torch"
    assert spans[0].features["_meta"]["shape"] == [3, 4]


def test_ground_truth_correlation(receiver: OTLPReceiver) -> None:
    trace_id, spans = _run(receiver, "ground_truth_correlation")
    labels = [s for s in spans if s.name == "label"]
    assert [(s.trace_id, s.label) for s in labels] == [(trace_id, 1)]


def test_fastapi_integration(receiver: OTLPReceiver) -> None:
    trace_id, spans = _run(receiver, "fastapi_integration")
    prediction, label = spans
    assert prediction.trace_id == label.trace_id == trace_id
    assert prediction.model_name == "api_model"
    assert prediction.features["sample"]["features"]["_meta"]["shape"] == [30]
