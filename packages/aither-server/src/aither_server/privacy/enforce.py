"""A model's policy applied to what a client sent, before anything is stored: each prediction span's
``ml.features`` and ``ml.entity``, and a posted reference's column profiles.

Features are walked whatever their shape (the SDK's ``{"sample": rows, "_meta": ...}``, a record, a list of
records from another producer): in every object, a key that a rule names is that column. So a client that
ignores the SDK's policies, or is not the SDK, cannot get a dropped column past the server.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from aither.privacy import Action, ColumnPolicies, hash_key_from_env, scrub
from aither_server.ingest.metrics import DecodedMetrics, ProfileReport
from aither_server.ingest.spans import DecodedBatch
from aither_server.model.records import PredictionSpan
from aither_server.privacy.policy import REFUSED, EffectivePolicy

if TYPE_CHECKING:
    from aither.profile import Profile

__all__ = ["HASHED", "Refused", "enforce_batch", "entity_key", "private_features", "reference_refusal"]

#: A value already hashed with the ``hash`` action's format (``h:`` and 16 hex characters): kept as it is, so
#: what an SDK hashed with the same key is not hashed twice (it carries 64 bits of a keyed hash, nothing clear).
HASHED = re.compile(r"h:[0-9a-f]{16}")
#: ``_meta`` fields that list column names: a dropped column leaves them too (as the SDK drops it).
_META_NAMES = ("columns", "keys")
#: ``_meta`` fields that name columns or hold the texts behind text descriptors, handled by :func:`_meta`.
_META_SCHEMA = frozenset({*_META_NAMES, "dtypes", "texts"})


class Refused(Exception):
    """The span carries a column its model's policy refuses; the message names the column, never a value."""


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def private_features(text: str, policy: EffectivePolicy) -> str | None:
    """``ml.features`` as the policy lets it be stored; ``None`` when it cannot be walked by column (not JSON,
    or the truncation marker, whose preview is a cut JSON text) while the policy has column rules: then nothing
    of it is stored. Raises :class:`Refused` for a refused column."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        if policy.columns:
            return None
        return _dumps(scrub(text)) if policy.scrub else text
    truncated = isinstance(value, dict) and isinstance(value.get("_meta"), dict) and value["_meta"].get("truncated")
    if truncated and policy.columns:
        return None
    return _dumps(_walk(value, policy))


def _walk(value: object, policy: EffectivePolicy) -> object:
    """``value`` with every object's columns under the policy; scalars cost no call (most values are numbers)."""
    if isinstance(value, dict):
        return _object(value, policy)
    if isinstance(value, list):
        return [_walk(item, policy) if isinstance(item, (dict, list, str)) else item for item in value]
    if isinstance(value, str) and policy.scrub:
        return scrub(value)
    return value


def _object(value: dict[str, object], policy: EffectivePolicy) -> dict[str, object]:
    rule, scrubbing = policy.rule, policy.scrub
    out: dict[str, object] = {}
    for key, item in value.items():
        if key == "_meta" and isinstance(item, dict):
            out[key] = _meta(item, policy)
            continue
        action = rule(key)
        if action is None:
            if isinstance(item, (dict, list)):
                out[key] = _walk(item, policy)
            elif scrubbing and isinstance(item, str):
                out[key] = scrub(item)
            else:
                out[key] = item
        elif action is REFUSED:
            raise Refused(key)
        elif action.kind == "keep":
            out[key] = item
        elif action.kind != "drop":
            out[key] = _each(item, functools.partial(_apply, policy, action))
    return out


def _each(value: object, transform: Callable[[object], object]) -> object:
    """``transform`` of a value, or of each value of a list (a column of values in a dict of columns)."""
    if isinstance(value, list):
        return [_each(v, transform) for v in value]
    return transform(value)


def _apply(policy: EffectivePolicy, action: Action, value: object) -> object:
    if action.kind == "hash":
        if isinstance(value, str):
            return value if HASHED.fullmatch(value) else policy.hashed(value)
        if isinstance(value, dict):
            return policy.hashed(json.dumps(value, sort_keys=True, default=str))
    applied: object = policy.actions.apply(action, value)
    return applied


def _meta(meta: dict[str, object], policy: EffectivePolicy) -> dict[str, object]:
    """The sample's schema: the refused columns refuse the span even when this sample left them out (the input
    had them), and the dropped ones leave it; the texts behind text descriptors are scrubbed."""
    names: list[str] = []
    for field in _META_NAMES:
        listed = meta.get(field)
        if isinstance(listed, list):
            names.extend(c for c in listed if isinstance(c, str))
    dtypes = meta.get("dtypes")
    if isinstance(dtypes, dict):
        names.extend(str(c) for c in dtypes)
    dropped = set()
    for name in names:
        action = policy.rule(name)
        if action is REFUSED:
            raise Refused(name)
        if action is not None and action.kind == "drop":
            dropped.add(name)
    # Its other fields (rows, shapes, ...) are held to the rules too: nothing is exempt for being under _meta.
    out = {k: v for k, v in meta.items() if k in _META_SCHEMA}
    out.update(_object({k: v for k, v in meta.items() if k not in _META_SCHEMA}, policy))
    if dropped:
        for field in _META_NAMES:
            listed = out.get(field)
            if isinstance(listed, list):
                out[field] = [c for c in listed if c not in dropped]
        dtypes = out.get("dtypes")
        if isinstance(dtypes, dict):
            out["dtypes"] = {c: d for c, d in dtypes.items() if c not in dropped}
    texts = out.get("texts")
    if policy.scrub and isinstance(texts, list):
        out["texts"] = [scrub(t) if isinstance(t, str) else t for t in texts]
    return out


def entity_key(entity: str, hash_key: bytes | None) -> str | None:
    """``ml.entity`` as stored: as sent when the SDK hashed it; else hashed here with the server's
    ``AITHER_HASH_KEY``; ``None`` when it is clear and the server has no key (the span is refused: an entity is
    never stored in clear)."""
    if HASHED.fullmatch(entity):
        return entity
    if not hash_key:
        return None
    return ColumnPolicies({"entity": "hash"}, hash_key=hash_key).hashed(entity)


def enforce_batch(batch: DecodedBatch, policy_of: Callable[[str], EffectivePolicy]) -> None:
    """Apply each prediction's model policy to ``batch`` in place: features rewritten, spans with a refused
    column (or a clear entity the server cannot hash) moved to the rejected spans of the OTLP partial success."""
    hash_key: bytes | None = None
    kept: list[PredictionSpan] = []
    for span in batch.predictions:
        if span.entity is not None:
            if hash_key is None:
                hash_key = hash_key_from_env() or b""
            stored = entity_key(span.entity, hash_key)
            if stored is None:
                batch.reject("ml.entity must be sent hashed (aither.entity_key) or the server needs AITHER_HASH_KEY")
                continue
            span.entity = stored
        policy = policy_of(span.model)
        if policy and span.features is not None:
            try:
                span.features = private_features(span.features, policy)
            except Refused as exc:
                batch.reject(f"ml.features carries the column {exc.args[0]!r}, refused by the server's privacy policy")
                continue
        kept.append(span)
    batch.predictions = kept


def reference_refusal(columns: dict[str, dict[str, object]], policy: EffectivePolicy) -> str | None:
    """Why a reference's column profiles cannot be stored under ``policy`` (a 400), else ``None``; the columns
    the policy drops are removed from ``columns`` in place."""
    from aither.profile import Profile

    for name in list(columns):
        verdict = profile_verdict(name, lambda name=name: Profile.from_json(columns[name]), policy)  # type: ignore[misc]
        if verdict == DROP:
            del columns[name]
        elif verdict is not None:
            return f"the reference: {verdict}"
    return None


def enforce_profiles(decoded: DecodedMetrics, policy_of: Callable[[str], EffectivePolicy]) -> None:
    """Apply each model's policy to a profile-only SDK's column sketches (``/v1/metrics``) in place, as to a
    reference's: a dropped column's sketch is left out, one the policy refuses or cannot hold is rejected in the
    OTLP partial success, alone."""
    kept: list[ProfileReport] = []
    for report in decoded.profiles:
        policy = policy_of(report.model)
        verdict = profile_verdict(report.column, _given(report.profile), policy) if policy else None
        if verdict is None:
            kept.append(report)
        elif verdict != DROP:
            decoded.reject(f"aither.profile: {verdict}")
    decoded.profiles = kept


def _given(profile: Profile) -> Callable[[], Profile]:
    return lambda: profile


#: ``profile_verdict``'s answer for a column the policy drops.
DROP = "drop"


def profile_verdict(name: str, load: Callable[[], Profile], policy: EffectivePolicy) -> str | None:
    """What ``policy`` makes of one column's profile: ``None`` (stored as it is), ``DROP``, or why it cannot be
    stored. A profile is a sketch: a categorical one holds its most frequent values themselves, which the server
    cannot rewrite without the rows, so a profile of a column the policy hashes must hold hashed values already,
    and one the policy scrubs must hold nothing to scrub."""
    from aither.profile import CATEGORICAL

    if policy.refuses(name):
        return f"the column {name!r} is refused by the server's privacy policy"
    action = policy.actions.action(name) if policy.actions else None
    if action is not None and action.kind == "drop":
        return DROP
    if action is not None and action.kind in ("keep", "round", "bucket"):
        return None  # numbers at a resolution: a profile's quantiles are not values of one row
    if action is None and not policy.scrub:
        return None
    profile = load()
    if profile.kind != CATEGORICAL:
        if action is not None and action.kind == "hash":
            return f"the column {name!r} is numeric; the server's policy hashes it: profile it hashed"
        return None
    items = _items(profile)
    if action is not None and any(not HASHED.fullmatch(item) for item in items):
        return (
            f"the column {name!r} holds clear values; the server's policy hashes it: send it hashed"
            " (column_policies={...: 'hash'}, the same AITHER_HASH_KEY)"
        )
    if action is None and any(scrub(item) != item for item in items):
        return f"the column {name!r} holds values the server's policy scrubs (e-mail, card, ...)"
    return None


def _items(profile: Profile) -> list[str]:
    import datasketches

    found = profile.frequent().get_frequent_items(datasketches.frequent_items_error_type.NO_FALSE_NEGATIVES)
    return [str(item[0]) for item in found]
