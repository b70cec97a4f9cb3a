"""OTLP/HTTP trace bodies -> decoded prediction and label records.

Bytes in, records out: this module knows OTLP's trace messages (``body.py`` undoes the encoding and parses
them) and nothing about storage. Spans that are not aither spans are counted as rejected, for
``partial_success``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import time
from collections.abc import Sequence

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from aither_server.ingest.body import (
    PROTOBUF,
    MalformedBody,
    parse_request,
)
from aither_server.ingest.values import BadValue, json_text, non_negative_int, without_lone_surrogates
from aither_server.model.json_value import JsonValue
from aither_server.model.records import (
    InvalidJson,
    LabelSpan,
    PoisonValue,
    PredictionSpan,
    RowValue,
    label_keys,
    parse_label,
    parse_prediction,
)

__all__ = [
    "DEFAULT_MAX_ATTRIBUTE_BYTES",
    "DecodedBatch",
    "decode_body",
    "encode_response",
]

_MAX_NAME = 256
_MAX_REJECT_MESSAGES = 5
# SQLite integers are signed 64-bit; OTLP times are unsigned.
_MAX_TIME_NS = 2**63 - 1
_NO_ROWS: tuple[int, Sequence[RowValue]] = (0, ())
#: The largest ``ml.features``, ``ml.prediction`` or ``ml.label`` stored whole; a larger one is stored as the
#: SDK's truncation marker. 16 times the SDK's own default cap, so only a hostile or misconfigured sender hits it.
DEFAULT_MAX_ATTRIBUTE_BYTES = 1024 * 1024
_MIN_SAMPLE_RATE = 1e-9
#: Characters of a truncated attribute kept as its preview (as the SDK keeps).
_PREVIEW_CHARS = 1000


#: Why a span with no ``ml.*`` attribute is not stored (another library's span sent to the same endpoint).
IGNORED_REASON = "no ml.* attribute (not a prediction or label span)"


@dataclasses.dataclass
class DecodedBatch:
    predictions: list[PredictionSpan] = dataclasses.field(default_factory=list)
    labels: list[LabelSpan] = dataclasses.field(default_factory=list)
    rejected: int = 0
    """Spans refused for a wrong or missing ``ml.*`` value."""
    ignored: int = 0
    """Spans with no ``ml.*`` attribute at all: not aither spans; not stored."""
    reasons: dict[str, int] = dataclasses.field(default_factory=dict)
    """Rejected spans by reason (the first few reasons)."""

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if reason in self.reasons:
            self.reasons[reason] += 1
        elif len(self.reasons) < _MAX_REJECT_MESSAGES:
            self.reasons[reason] = 1

    @property
    def not_stored(self) -> int:
        """``partial_success.rejected_spans``: every span not stored, rejected or ignored."""
        return self.rejected + self.ignored

    @property
    def error_message(self) -> str:
        parts = [f"{count} spans rejected: {reason}" for reason, count in self.reasons.items()]
        if self.ignored:
            parts.append(f"{self.ignored} spans ignored: {IGNORED_REASON}")
        return "; ".join(parts)


def _hex_to_b64(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise MalformedBody(f"{field} must be a hex string")
    if not value:
        return ""
    try:
        return base64.b64encode(binascii.unhexlify(value)).decode("ascii")
    except (binascii.Error, ValueError):
        raise MalformedBody(f"{field} is not hex: {value[:40]!r}") from None


def _replace_lone_surrogates(node: object) -> object:
    """``node`` with each lone surrogate of its strings (JSON's ``\\ud83d`` escape reads into one) replaced by
    U+FFFD, as the binary encoding's values are stored: protobuf refuses such a string, and one value would
    otherwise cost its whole request a 400."""
    if isinstance(node, str):
        if node.isascii():
            return node
        return node.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(node, dict):
        for key, value in node.items():
            node[key] = _replace_lone_surrogates(value)
    elif isinstance(node, list):
        node[:] = [_replace_lone_surrogates(value) for value in node]
    return node


def _fix_json_ids(doc: object) -> None:
    """OTLP/JSON writes ids as hex where protobuf's JSON mapping expects base64: convert in place (and lone
    surrogates, which protobuf refuses, become U+FFFD)."""
    if not isinstance(doc, dict):
        raise MalformedBody("an OTLP/JSON body is an object with resourceSpans")
    _replace_lone_surrogates(doc)
    for rs in doc.get("resourceSpans") or []:
        if not isinstance(rs, dict):
            continue
        for ss in rs.get("scopeSpans") or []:
            if not isinstance(ss, dict):
                continue
            for span in ss.get("spans") or []:
                if not isinstance(span, dict):
                    continue
                for field in ("traceId", "spanId", "parentSpanId"):
                    if field in span:
                        span[field] = _hex_to_b64(span[field], field)
                for link in span.get("links") or []:
                    if isinstance(link, dict):
                        for field in ("traceId", "spanId"):
                            if field in link:
                                link[field] = _hex_to_b64(link[field], field)


def _parse(body: bytes, kind: str) -> ExportTraceServiceRequest:
    return parse_request(body, kind, ExportTraceServiceRequest(), _fix_json_ids)


def _error_of(span: Span) -> str:
    message = span.status.message
    if not message:
        for event in span.events:
            if event.name == "exception":
                attrs = {kv.key: kv.value.string_value for kv in event.attributes}
                etype, emsg = attrs.get("exception.type", ""), attrs.get("exception.message", "")
                message = f"{etype}: {emsg}" if etype else emsg
                break
    return message or "error"


_NO_TRACE = bytes(16)
_NO_SPAN = bytes(8)


def _first_link(span: Span) -> tuple[bytes, bytes] | None:
    """The caller's span (wire contract: a prediction's first link), if it names a valid one."""
    if not span.links:
        return None
    link = span.links[0]
    trace_id, span_id = link.trace_id, link.span_id
    if len(trace_id) != 16 or trace_id == _NO_TRACE or len(span_id) != 8 or span_id == _NO_SPAN:
        return None
    return trace_id, span_id


def _capped(text: str, limit: int) -> str:
    """``text``, or the SDK's truncation marker for it when it is over ``limit`` bytes (docs/wire-contract.md):
    a 50 MiB attribute costs the database what a normal one does."""
    if len(text) * 4 <= limit:  # UTF-8 takes at most 4 bytes a character: no need to encode
        return text
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size <= limit:
        return text
    marker = {"_meta": {"truncated": True, "original_bytes": size}, "preview": text[:_PREVIEW_CHARS]}
    return json.dumps(marker, separators=(",", ":"), ensure_ascii=False)


def _as_json_string(text: str) -> str:
    """A string attribute that is not JSON, as the JSON string of that text (docs/wire-contract.md, "Values")."""
    return without_lone_surrogates(json.dumps(text, ensure_ascii=False))


# How an ``ml.*`` attribute is read (docs/wire-contract.md): each kind is one branch of the loop in
# ``_span_record``. A value that cannot be used is a :class:`BadValue`, the span's rejection reason.
_TEXT = 0  # the string as sent
_JSON = 1  # JSON text: a string as sent, another type encoded
_FEATURES = 2  # a string as sent; an OTel producer's array or map of features encoded, as ml.prediction's
_INT = 3  # an int as sent (a negative one is judged below), else what non_negative_int makes of it
_RATE = 4  # a double or an int; another type is out of range (refused below)

#: The attributes read as text, in the order ``_span_record`` unpacks them: each has that slot of its texts.
_TEXT_KEYS = (
    "ml.model.name", "ml.model.version", "ml.environment", "ml.framework", "ml.method", "ml.entity",
    "ml.features", "ml.prediction", "ml.label",
)  # fmt: skip
_TEXT_KINDS = {"ml.features": _FEATURES, "ml.prediction": _JSON, "ml.label": _JSON}
#: Each ``ml.*`` attribute the server reads: (how it is read, its slot among the span's texts or integers).
#: Other ``ml.*`` keys only mark the span as an aither span. One lookup per key (looked up before its prefix is
#: sliced: the common keys skip that copy), and one branch per kind holds what the keys of that kind share.
_ATTRIBUTES: dict[str, tuple[int, int]] = {
    **{key: (_TEXT_KINDS.get(key, _TEXT), slot) for slot, key in enumerate(_TEXT_KEYS)},
    "ml.batch_size": (_INT, 0),
    "ml.label.row": (_INT, 1),
    "ml.sample_rate": (_RATE, 0),
}


def _span_record(
    span: Span, service: str | None, instance: str | None, batch: DecodedBatch, now_ns: int, max_attribute: int
) -> None:
    trace_id, span_id = span.trace_id, span.span_id
    if len(trace_id) != 16 or trace_id == _NO_TRACE or len(span_id) != 8 or span_id == _NO_SPAN:
        batch.reject("invalid trace_id or span_id")
        return
    # One pass over the attributes (each protobuf access builds a Python object).
    texts: list[str | None] = [None] * 9
    ints: list[int | None] = [None, None]
    sample_rate: float | None = None
    has_ml = False
    bad: str | None = None
    attributes = _ATTRIBUTES
    for kv in span.attributes:
        key = kv.key
        found = attributes.get(key)
        if found is None:
            if key[:3] == "ml.":
                has_ml = True
            continue
        has_ml = True
        kind, slot = found
        value = kv.value
        if kind == _TEXT:
            texts[slot] = value.string_value
        elif kind in (_JSON, _FEATURES):
            text = texts[slot] = value.string_value
            if not text and (kind == _JSON or value.WhichOneof("value") not in (None, "string_value")):
                try:
                    texts[slot] = json_text(value, key)
                except BadValue as exc:
                    bad = bad or str(exc)
        elif kind == _INT:
            if value.HasField("int_value"):
                ints[slot] = value.int_value
            else:
                try:
                    ints[slot] = non_negative_int(value, key)
                except BadValue as exc:
                    bad = bad or str(exc)
        elif value.HasField("double_value"):  # _RATE
            sample_rate = value.double_value
        elif value.HasField("int_value"):
            sample_rate = float(value.int_value)
        else:
            sample_rate = -1.0
    model, version, environment, framework, method, entity, features, prediction, label = texts
    batch_size, row = ints
    if entity is not None:
        entity = entity[:_MAX_NAME] or None

    if not has_ml and span.name != "label":
        batch.ignored += 1
        return
    if bad is not None:
        batch.reject(bad)
        return
    start_ns = span.start_time_unix_nano
    end_ns = span.end_time_unix_nano
    if start_ns > _MAX_TIME_NS or end_ns > _MAX_TIME_NS:
        batch.reject("timestamp out of range")
        return
    start = start_ns or now_ns
    name = span.name
    if label is not None or name == "label":
        # A label joins by trace id alone: it needs no model name (a late label may come from elsewhere).
        if label is None:
            batch.reject("label span without ml.label")
            return
        if row is not None and row < 0:
            batch.reject("ml.label.row must be a non-negative integer")
            return
        label = without_lone_surrogates(_capped(label, max_attribute))
        try:
            try:
                parsed_label = parse_label(label)
            except InvalidJson as exc:
                if isinstance(exc, PoisonValue):
                    raise
                label = _as_json_string(label)  # "cat" from an OTel producer: the text itself
                parsed_label = parse_label(label)
            keys = label_keys(parsed_label, row)
        except PoisonValue as exc:
            batch.reject(f"ml.label {exc}")
            return
        batch.labels.append(LabelSpan(trace_id, span_id, row, parsed_label, end_ns or start, label, keys))
        return

    if not model:
        batch.reject("span without ml.model.name")
        return
    if len(model) > _MAX_NAME or len(version or "") > _MAX_NAME or len(environment or "") > _MAX_NAME:
        batch.reject(f"ml.model.name, ml.model.version and ml.environment are limited to {_MAX_NAME} characters")
        return
    # The weight 1/sample_rate multiplies squared errors in the rollups: bounded, so they stay finite.
    if sample_rate is not None and not _MIN_SAMPLE_RATE <= sample_rate <= 1.0:
        batch.reject("ml.sample_rate must be a number in [1e-9, 1]")
        return
    error = _error_of(span) if span.status.code == Status.STATUS_CODE_ERROR else None
    if batch_size is not None and batch_size < 0:
        batch_size = None
    if len(name) > _MAX_NAME:
        name = name[:_MAX_NAME]
    method = (method or name)[:_MAX_NAME] or None
    parsed_prediction: JsonValue = None
    reduced: tuple[int, Sequence[RowValue]] = _NO_ROWS
    if features is not None:
        features = without_lone_surrogates(_capped(features, max_attribute))
    if prediction is not None and error is None:
        prediction = without_lone_surrogates(_capped(prediction, max_attribute))
        try:
            try:
                parsed_prediction, reduced = parse_prediction(prediction, batch_size, method)
            except InvalidJson as exc:
                if isinstance(exc, PoisonValue):
                    raise
                prediction = _as_json_string(prediction)  # "cat" from an OTel producer: the text itself
                parsed_prediction, reduced = parse_prediction(prediction, batch_size, method)
        except PoisonValue as exc:
            batch.reject(f"ml.prediction {exc}")
            return
    batch.predictions.append(
        PredictionSpan(
            trace_id,
            span_id,
            model,
            version or "",
            environment or "",
            name,
            method,
            framework[:_MAX_NAME] if framework else None,
            start,
            end_ns if end_ns > start else start,
            error,
            batch_size,
            features,
            parsed_prediction,
            prediction if error is None else None,
            service,
            reduced,
            instance=instance,
            sample_rate=None if sample_rate == 1.0 else sample_rate,
            link=_first_link(span),
            entity=entity,
        )
    )


def decode_body(body: bytes, kind: str, max_attribute_bytes: int = DEFAULT_MAX_ATTRIBUTE_BYTES) -> DecodedBatch:
    """Decode an (already decompressed) OTLP trace request into prediction and label records; attributes
    over ``max_attribute_bytes`` are kept as truncation markers."""
    request = _parse(body, kind)
    batch = DecodedBatch()
    now_ns = time.time_ns()
    for rs in request.resource_spans:
        service = instance = None
        for kv in rs.resource.attributes:
            if kv.key == "service.name":
                service = kv.value.string_value[:_MAX_NAME] or None
            elif kv.key == "service.instance.id":
                instance = kv.value.string_value[:_MAX_NAME] or None
        for ss in rs.scope_spans:
            for span in ss.spans:
                _span_record(span, service, instance, batch, now_ns, max_attribute_bytes)
    return batch


def encode_response(kind: str, rejected: int, message: str) -> bytes:
    """An ExportTraceServiceResponse in the request's own encoding, as OTLP/HTTP requires."""
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if kind == PROTOBUF:
        data: bytes = response.SerializeToString()
        return data
    return json.dumps(json_format.MessageToDict(response)).encode()
