"""``aither.monitors``: create, list, read, change, delete and evaluate the server's monitors
(docs/monitors.md). Creating, changing, deleting and evaluating need an ``admin`` key; reading a ``read`` key.

Built on the management client (``_management.ManagementClient``): the same settings, errors and care with the
API key. A created monitor's webhook ``secret`` is in the returned ``Monitor.secret`` only (hidden from its repr).
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime
import enum
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote

from . import _answers as read
from ._answers import JsonObject
from ._management import ManagementClient

__all__ = ["Monitor", "MonitorState", "Monitors", "monitors"]


class _Unset(enum.Enum):
    """The default of ``update``'s fields: left out, the field stays as it is (None sets an optional one to null)."""

    UNSET = "unset"

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Final = _Unset.UNSET

_MONITORS = "/api/v1/monitors"
#: A monitor's settable fields, in the order they are sent. ``create`` and ``update`` name their arguments after
#: them and take them with ``_fields(locals())``, so the two cannot send different sets.
_FIELDS = (
    "name",
    "model",
    "metric",
    "op",
    "threshold",
    "window",
    "min_rows",
    "version",
    "environment",
    "webhook_url",
    "enabled",
)


@dataclasses.dataclass(frozen=True)
class Monitor:
    """A monitor as the server last described it; ``state`` is OK, ALERT or NO_DATA."""

    id: str
    name: str
    model: str
    version: str | None
    environment: str | None
    metric: str
    op: str
    threshold: float
    window: str
    min_rows: int
    webhook_url: str | None
    enabled: bool
    state: str
    value: float | None
    rows: int | None
    last_evaluated: datetime.datetime | None
    created_at: datetime.datetime | None
    secret: str | None = dataclasses.field(default=None, repr=False, compare=False)
    #: On a new monitor: why it would stay NO_DATA as things stand (an unknown model, a column without data).
    warnings: tuple[str, ...] = dataclasses.field(default=(), compare=False)


@dataclasses.dataclass(frozen=True)
class MonitorState:
    """One change of a monitor's state."""

    state: str
    previous: str
    value: float | None
    rows: int | None
    at: datetime.datetime | None


def _monitor(data: JsonObject, with_secret: bool = False) -> Monitor:
    with read.parsing_answer("an invalid monitor"):
        secret = data.get("secret") if with_secret else None
        return Monitor(
            id=str(data["id"]),
            name=str(data["name"]),
            model=str(data["model"]),
            version=read.optional_text(data.get("version")),
            environment=read.optional_text(data.get("environment")),
            metric=str(data["metric"]),
            op=str(data["op"]),
            threshold=read.number(data["threshold"]),
            window=str(data["window"]),
            min_rows=read.integer(data["min_rows"]),
            webhook_url=read.optional_text(data.get("webhook_url")),
            enabled=bool(data["enabled"]),
            state=str(data["state"]),
            value=read.optional_number(data.get("value")),
            rows=read.optional_integer(data.get("rows")),
            last_evaluated=read.parse_time(data.get("last_evaluated")),
            created_at=read.parse_time(data.get("created_at")),
            secret=secret if isinstance(secret, str) else None,
            warnings=read.texts(data.get("warnings")),
        )


def _path(monitor_id: str, tail: str = "") -> str:
    if not isinstance(monitor_id, str) or not monitor_id:
        raise ValueError("monitor_id must be a non-empty string")
    return f"{_MONITORS}/{quote(monitor_id, safe='')}{tail}"


def _fields(arguments: Mapping[str, object]) -> dict[str, object]:
    """The monitor fields among a method's ``locals()``."""
    return {field: arguments[field] for field in _FIELDS}


class Monitors:
    """``aither.monitors``."""

    def __init__(self, client: ManagementClient | None = None) -> None:
        self._client = client or ManagementClient()

    def __repr__(self) -> str:
        return "<aither.monitors>"

    def _request_monitor(self, method: str, path: str, *, json: object = None, with_secret: bool = False) -> Monitor:
        """The monitor the server answers the call with."""
        return _monitor(read.as_object(self._client.request(method, path, json=json)), with_secret=with_secret)

    def _get_list(self, path: str) -> builtins.list[JsonObject]:
        return read.data_list(read.as_object(self._client.request("GET", path)), "list")

    def create(
        self,
        name: str,
        model: str,
        metric: str,
        op: str,
        threshold: float,
        *,
        window: str = "1h",
        min_rows: int = 1,
        version: str | None = None,
        environment: str | None = None,
        webhook_url: str | None = None,
        enabled: bool = True,
    ) -> Monitor:
        """A new monitor: ALERT while ``<metric> <op> <threshold>`` over the last ``window``. Keep the returned
        ``secret`` now (it verifies the webhooks' ``Aither-Signature``): the server never shows it again."""
        return self._request_monitor("POST", _MONITORS, json=_fields(locals()), with_secret=True)

    def list(self, model: str | None = None) -> builtins.list[Monitor]:
        path = _MONITORS + ("" if model is None else "?model=" + quote(model, safe=""))
        return [_monitor(item) for item in self._get_list(path)]

    def get(self, monitor_id: str) -> Monitor:
        return self._request_monitor("GET", _path(monitor_id))

    def update(
        self,
        monitor_id: str,
        *,
        name: str | _Unset = _UNSET,
        model: str | _Unset = _UNSET,
        metric: str | _Unset = _UNSET,
        op: str | _Unset = _UNSET,
        threshold: float | _Unset = _UNSET,
        window: str | _Unset = _UNSET,
        min_rows: int | _Unset = _UNSET,
        version: str | _Unset | None = _UNSET,
        environment: str | _Unset | None = _UNSET,
        webhook_url: str | _Unset | None = _UNSET,
        enabled: bool | _Unset = _UNSET,
    ) -> Monitor:
        """Change the fields given; the others stay."""
        given = _fields(locals())
        body = {k: v for k, v in given.items() if v is not _UNSET}
        return self._request_monitor("PATCH", _path(monitor_id), json=body)

    def delete(self, monitor_id: str) -> None:
        self._client.request("DELETE", _path(monitor_id))

    def evaluate(self, monitor_id: str) -> Monitor:
        """Evaluate now; a change of state sends the webhook."""
        return self._request_monitor("POST", _path(monitor_id, "/evaluate"))

    def states(self, monitor_id: str) -> builtins.list[MonitorState]:
        """The changes of state, newest first."""
        out = []
        for item in self._get_list(_path(monitor_id, "/states")):
            out.append(
                MonitorState(
                    state=str(item.get("state")),
                    previous=str(item.get("previous")),
                    value=read.optional_number(item.get("value")),
                    rows=read.optional_integer(item.get("rows")),
                    at=read.parse_time(item.get("at")),
                )
            )
        return out


monitors = Monitors()
