"""Test helpers: assert what your code logs, with no network.

* :func:`capture` / the ``aither_capture`` pytest fixture: an in-memory capture of spans.
* :class:`OTLPReceiver`: a real OTLP/HTTP receiver on 127.0.0.1, with scripted faults.
* :func:`live_server` / the ``aither_server`` fixture: a real aither server (needs aither-server installed).
* :mod:`aither.testing.contract`: the test suite every plugin runs against its own models.
* :func:`assert_imports_no_framework` / :func:`missing_framework_error`: a plugin's import checks, each in a
  fresh interpreter (:func:`run_python`).
"""

from __future__ import annotations

from ._capture import SpanCapture, capture
from ._isolation import assert_imports_no_framework, missing_framework_error, run_python
from ._metrics import MetricPoint, decode_metrics
from ._network import closed_local_url
from ._receiver import Fault, OTLPReceiver, ReceivedRequest
from ._receiving import RECEIVING_DEFAULTS, receiving
from ._server import LiveServer, live_server
from ._signatures import assert_wrap_options_signature
from ._spans import CapturedSpan, decode_request

__all__ = [
    "MetricPoint",
    "closed_local_url",
    "decode_metrics",
    "CapturedSpan",
    "Fault",
    "LiveServer",
    "OTLPReceiver",
    "RECEIVING_DEFAULTS",
    "ReceivedRequest",
    "SpanCapture",
    "assert_imports_no_framework",
    "assert_wrap_options_signature",
    "capture",
    "decode_request",
    "live_server",
    "missing_framework_error",
    "receiving",
    "run_python",
]
