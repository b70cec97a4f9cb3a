"""What every plugin does with its framework: import it with a clear error, check the supported versions once,
and read the settings that bound what it records."""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import logging
import re
import warnings
from types import ModuleType

from . import _client
from ._capture import Captured, truncated_rows
from ._errors import MissingDependencyError

__all__ = [
    "bounded_prediction",
    "max_prediction_rows",
    "require_framework",
    "supported_versions",
    "telemetry_disabled",
    "version_in_range",
]

logger = logging.getLogger("aither")

_checked: set[tuple[str, str]] = set()
_INSTRUMENTS = re.compile(r"""extra\s*==\s*["']instruments["']""")
_REQUIREMENT = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)")
_CLAUSE = re.compile(r"\s*(>=|<=|==|!=|>|<)\s*([0-9][0-9.]*)\s*")


def _release(version: str) -> tuple[int, ...]:
    """``"2.13.0+cpu"`` -> ``(2, 13, 0)``; pre-release and local suffixes are ignored."""
    numbers = re.match(r"\d+(?:\.\d+)*", version.strip())
    return tuple(int(part) for part in numbers.group(0).split(".")) if numbers else (0,)


def _compare(left: tuple[int, ...], right: tuple[int, ...]) -> int:
    width = max(len(left), len(right))
    padded_left = left + (0,) * (width - len(left))
    padded_right = right + (0,) * (width - len(right))
    return (padded_left > padded_right) - (padded_left < padded_right)


def version_in_range(version: str, supported: str) -> bool:
    """Whether ``version`` satisfies ``supported``, a comma list of clauses such as ``">=2.1,<3"``."""
    release = _release(version)
    for clause in supported.split(","):
        match = _CLAUSE.fullmatch(clause)
        if match is None:
            raise ValueError(f"unsupported version clause {clause!r} in {supported!r}")
        operator, bound = match.groups()
        order = _compare(release, _release(bound))
        ok = {
            ">=": order >= 0,
            "<=": order <= 0,
            ">": order > 0,
            "<": order < 0,
            "==": order == 0,
            "!=": order != 0,
        }[operator]
        if not ok:
            return False
    return True


@functools.cache
def supported_versions(plugin: str) -> dict[str, str]:
    """The framework versions ``plugin`` supports: its ``instruments`` extra, read from its installed metadata.

    The extra in the plugin's ``pyproject.toml`` is the one table; this and ``pip install 'plugin[instruments]'``
    both read it. ``{"scikit-learn": ">=1.5"}``; empty when the plugin's metadata cannot be found.
    """
    try:
        requirements = importlib.metadata.requires(plugin) or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    table: dict[str, str] = {}
    for requirement in requirements:
        spec, _, marker = requirement.partition(";")
        if _INSTRUMENTS.search(marker) is None:
            continue
        match = _REQUIREMENT.fullmatch(spec.strip())
        if match is not None:
            clauses = [clause for clause in match.group(2).replace(" ", "").split(",") if clause]
            clauses.sort(key=lambda clause: 0 if clause[0] in ">=~" else 1)  # metadata sorts them: lower bound first
            table[match.group(1).lower()] = ",".join(clauses)
    return table


def require_framework(
    module: str, *, plugin: str, distribution: str | None = None, supported: str | None = None
) -> ModuleType:
    """Import a plugin's framework, or raise :class:`aither.MissingDependencyError` saying what to install.

    Outside the versions ``plugin`` supports (its ``instruments`` extra, or ``supported``: ``">=2.1,<3"``) it
    warns once, as a ``RuntimeWarning`` and on the ``aither`` logger: calls are still logged, but the plugin was
    not tested there.
    """
    name = distribution or module
    if supported is None:
        supported = supported_versions(plugin).get(name.lower(), "")
    try:
        framework = importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{plugin} needs {name}{supported}, which is not installed: pip install '{name}{supported}'"
        ) from exc
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        version = str(getattr(framework, "__version__", "0"))
    if (module, version) not in _checked:
        _checked.add((module, version))
        if supported and not version_in_range(version, supported):
            message = (
                f"{plugin} supports {name}{supported}, but {version} is installed: "
                "calls are still logged, but features or predictions may be incomplete"
            )
            warnings.warn(message, RuntimeWarning, stacklevel=3)
            logger.warning("aither: %s", message)
    return framework


def telemetry_disabled() -> bool:
    """True under ``AITHER_DISABLED=1`` / ``init(disabled=True)``: a plugin can then skip copying anything."""
    return _client.get_client().settings.disabled


def max_prediction_rows() -> int:
    """Rows of an output kept in ``ml.prediction`` (``aither.init(max_prediction_rows=...)``, default 1,000)."""
    return _client.get_client().settings.max_prediction_rows


def _render_bounded(data: tuple[object, int]) -> object:
    values, total = data
    if hasattr(values, "tolist"):
        values = values.tolist()
    if isinstance(values, list) and total > len(values):
        return truncated_rows(values, total)
    return values


def bounded_prediction(head: object, total_rows: int, nbytes: int = 256) -> Captured:
    """A prediction of ``total_rows`` rows of which ``head`` (a list or array, already copied) is kept.

    Rendered as the wire contract says: the rows themselves, or ``{"values", "_meta": {"truncated": true,
    "total_rows"}}`` when rows were left out.
    """
    return Captured(_render_bounded, (head, total_rows), total_rows, nbytes)
