"""A planted failure for the dashboard's diagnostics: a loan-default classifier ("loans") whose facts the pages
must find.

- 20 whole hours of predictions up to the start of this hour, 12 calls an hour, each a batch of 10 rows,
  every row sampled (``_meta.rows``).
- ``channel`` (web, branch, partner_api): right on 95% of web and branch rows, on 40% of partner_api rows, so
  ``channel = partner_api`` is the worst segment.
- ``income``: no nulls in the reference nor in the first 10 hours, 30% nulls after: a null surge.
- Binary ``predict_proba`` outputs, so the confusion matrix, score distribution and calibration are drawn.
- Labels for every call but those of the newest 3 hours: label lag there.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from conftest import Server
from otlp_builders import label_span, new_trace_id, prediction_span

import aither

MODEL = "loans"
HOURS = 20
CALLS_PER_HOUR = 12
ROWS = 10
LAGGING_HOURS = 3
CHANNELS = ["web", "branch", "partner_api"]


def plant(server: Server) -> dict[str, Any]:
    """Send the scenario to ``server`` (``aither.init`` must point at it: the reference goes through the SDK);
    returns the confusion matrix it planted, as counts by (actual, predicted)."""
    rng = np.random.default_rng(24)
    reference = pd.DataFrame(
        {"channel": rng.choice(CHANNELS, size=3000, p=[0.5, 0.3, 0.2]), "income": rng.lognormal(10, 0.4, 3000)}
    )
    aither.log_reference(MODEL, reference, predictions=rng.integers(0, 2, size=3000).tolist())
    hour_ns = 3600 * 10**9
    # Whole hours ending at the start of this one: the lagging hours are then exactly the newest 3 slices of
    # any window sliced by the hour, whatever the time the test runs (this hour's slice has no calls).
    now = time.time_ns() // hour_ns * hour_ns
    first = now - HOURS * hour_ns
    spans = []
    confusion: dict[tuple[int, int], int] = {}
    for call in range(HOURS * CALLS_PER_HOUR):
        start = first + call * hour_ns // CALLS_PER_HOUR
        late = start >= first + (HOURS - 10) * hour_ns
        channels = rng.choice(CHANNELS, size=ROWS, p=[0.5, 0.3, 0.2])
        incomes: list[float | None] = [float(v) for v in rng.lognormal(10, 0.4, ROWS)]
        if late:
            incomes = [None if rng.random() < 0.3 else v for v in incomes]
        truth = rng.integers(0, 2, size=ROWS)
        scores, predicted = [], []
        for channel, actual in zip(channels, truth, strict=True):
            right = rng.random() < (0.4 if channel == "partner_api" else 0.95)
            guess = int(actual) if right else 1 - int(actual)
            score = float(rng.uniform(0.55, 0.95) if guess == 1 else rng.uniform(0.05, 0.45))
            scores.append([round(1 - score, 4), round(score, 4)])
            predicted.append(guess)
        trace_id = new_trace_id()
        sample = [{"channel": str(c), "income": v} for c, v in zip(channels, incomes, strict=True)]
        spans.append(
            prediction_span(
                MODEL,
                scores,
                trace_id=trace_id,
                method="predict_proba",
                features={"sample": sample, "_meta": {"rows": list(range(ROWS))}},
                start_ns=start,
            )
        )
        if start < now - LAGGING_HOURS * hour_ns:
            for row, actual in enumerate(truth):
                spans.append(label_span(trace_id, int(actual), row=row))
                key = (int(actual), predicted[row])
                confusion[key] = confusion.get(key, 0) + 1
    for i in range(0, len(spans), 500):
        answer = server.ingest(spans[i : i + 500])
        assert answer.status_code == 200, answer.text
    return {"confusion": confusion}
