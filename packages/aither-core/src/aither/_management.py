"""The management API client: ``aither.org``, ``aither.user``, ``aither.api_keys``.

Blocking HTTP calls (docs/management-api.md) that return frozen snapshots. Settings (key, base URL) are read
at call time from the current client, so ``aither.init(...)`` after import is honoured. Errors follow the
``AitherError`` tree by status; no message, repr or log line ever holds the API key, and a created key's
secret lives only in ``ApiKey.secret`` (hidden from its repr).
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime
import json as json_module
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from ._answers import JsonObject, as_object, data_list, integer, parse_time, texts
from ._config import Settings
from ._errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from ._export._transport import describe_error, parse_retry_after
from ._version import __version__

__all__ = [
    "ApiKey",
    "ApiKeys",
    "ManagementClient",
    "Org",
    "Organization",
    "Usage",
    "User",
    "UserNamespace",
    "ServerPrivacy",
    "api_keys",
    "org",
    "server_privacy",
    "user",
]

_DEFAULT_TIMEOUT = 10.0
#: Bytes of an error answer read for its message; the rest is not needed.
_MAX_ERROR_BODY = 64 * 1024
_MAX_MESSAGE = 500


def _required_time(value: object, field: str) -> datetime.datetime:
    moment = parse_time(value)
    if moment is None:
        raise APIError(f"the server sent an invalid {field!r}: {str(value)[:50]!r}")
    return moment


@dataclasses.dataclass(frozen=True)
class Organization:
    """A point-in-time snapshot of the organisation; call ``aither.org.get()`` again to refresh."""

    id: str
    name: str
    plan: str
    created_at: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True)
class Usage:
    """Counters of the current billing period. ``predictions`` and ``labels`` count rows."""

    period_start: datetime.datetime
    period_end: datetime.datetime
    api_calls: int
    predictions: int
    labels: int


@dataclasses.dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str
    role: str


@dataclasses.dataclass(frozen=True)
class ApiKey:
    """An API key's metadata. ``secret`` (the full ``aith_...`` key) is set only on what ``create`` gives."""

    id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime.datetime | None
    last_used_at: datetime.datetime | None
    revoked: bool
    secret: str | None = dataclasses.field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        # The secret is a credential and a repr ends up in logs and tracebacks: say only whether there is one.
        hidden = "None" if self.secret is None else "'<hidden>'"
        return (
            f"ApiKey(id={self.id!r}, name={self.name!r}, prefix={self.prefix!r}, scopes={self.scopes!r}, "
            f"created_at={self.created_at!r}, last_used_at={self.last_used_at!r}, revoked={self.revoked!r}, "
            f"secret={hidden})"
        )

    __str__ = __repr__


def _api_key(data: JsonObject, with_secret: bool = False) -> ApiKey:
    secret = data.get("secret") if with_secret else None
    return ApiKey(
        id=str(data["id"]),
        name=str(data.get("name", "")),
        prefix=str(data.get("prefix", "")),
        scopes=texts(data.get("scopes")),
        created_at=parse_time(data.get("created_at")),
        last_used_at=parse_time(data.get("last_used_at")),
        revoked=bool(data.get("revoked", False)),
        secret=secret if isinstance(secret, str) else None,
    )


def _safe_url(url: str) -> str:
    """A URL fit for an error message: user info (which may hold a password) removed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _current_settings() -> Settings:
    from . import _client

    return _client.get_client().settings


class ManagementClient:
    """Blocking client of the management API.

    ``settings`` is a :class:`~aither._config.Settings` or a function returning one; by default the current
    client's settings, looked up on every call. ``transport`` is for tests (``httpx.MockTransport``) and
    custom networking.
    """

    def __init__(
        self,
        settings: Settings | Callable[[], Settings] | None = None,
        *,
        timeout: float = _DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if settings is None:
            self._settings: Callable[[], Settings] = _current_settings
        elif isinstance(settings, Settings):
            fixed = settings
            self._settings = lambda: fixed
        else:
            self._settings = settings
        self._timeout = timeout
        self._transport = transport

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def request(self, method: str, path: str, *, json: object = None) -> object:
        """One call; returns the decoded JSON body or raises an :class:`~aither.APIError` subclass."""
        settings = self._settings()
        if not settings.api_key:
            raise AuthenticationError(
                "no API key: set AITHER_API_KEY or call aither.init(api_key=...)", status_code=None
            )
        url = settings.base_url.rstrip("/") + path
        headers = {
            "Authorization": f"Bearer {settings.api_key}",
            "Accept": "application/json",
            "User-Agent": f"aither-python/{__version__}",
        }
        try:
            with httpx.Client(timeout=self._timeout, transport=self._transport, follow_redirects=False) as http:
                response = http.request(method, url, headers=headers, json=json)
                if response.status_code >= 400:
                    # Read a bounded part of an error answer: its message is all we need.
                    body = b""
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) >= _MAX_ERROR_BODY:
                            break
                    raise _error_for(response, body[:_MAX_ERROR_BODY], f"{method} {_safe_url(url)}")
                content = response.read()
        except httpx.TimeoutException:
            raise APIConnectionError(f"timed out calling {method} {_safe_url(url)}") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise APIConnectionError(
                f"could not reach the aither server for {method} {_safe_url(url)}: {_cause(exc)}"
            ) from None
        try:
            return json_module.loads(content) if content else None
        except (ValueError, RecursionError):
            raise APIError(
                f"the server answered {method} {_safe_url(url)} with a body that is not JSON",
                status_code=response.status_code,
            ) from None


def _cause(error: BaseException) -> str:
    """What went wrong underneath an httpx error, in words ("connection refused"), never a header value."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError):
            return describe_error(seen)
        seen = seen.__cause__ or seen.__context__
    return type(error).__name__


def _error_for(response: httpx.Response, body: bytes, call: str) -> APIError:
    message = ""
    try:
        data = json_module.loads(body)
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            message = str(error.get("message", ""))
        elif isinstance(data, dict) and "detail" in data:
            message = str(data["detail"])
    except (ValueError, RecursionError):
        pass
    status = response.status_code
    message = (message or response.reason_phrase or "error")[:_MAX_MESSAGE]
    text = f"{call} answered {status}: {message}"
    if status == 401:
        return AuthenticationError(text, status_code=status)
    if status == 403:
        return PermissionDeniedError(text, status_code=status)
    if status == 404:
        return NotFoundError(text, status_code=status)
    if status == 429:
        return RateLimitError(
            text, status_code=status, retry_after=parse_retry_after(response.headers.get("retry-after"))
        )
    return APIError(text, status_code=status)


class _Namespace:
    def __init__(self, client: ManagementClient | None = None) -> None:
        self._client = client or ManagementClient()

    def __repr__(self) -> str:
        return f"<aither.{type(self).__name__.lower()}>"


class Org(_Namespace):
    """``aither.org``: the organisation and its usage."""

    def get(self) -> Organization:
        data = as_object(self._client.request("GET", "/api/v1/org"))
        try:
            return Organization(
                id=str(data["id"]),
                name=str(data["name"]),
                plan=str(data["plan"]),
                created_at=parse_time(data.get("created_at")),
            )
        except KeyError as exc:
            raise APIError(f"the server's organisation lacks {exc.args[0]!r}") from None

    def usage(self) -> Usage:
        data = as_object(self._client.request("GET", "/api/v1/org/usage"))
        try:
            return Usage(
                period_start=_required_time(data.get("period_start"), "period_start"),
                period_end=_required_time(data.get("period_end"), "period_end"),
                api_calls=integer(data["api_calls"]),
                predictions=integer(data["predictions"]),
                labels=integer(data["labels"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise APIError(f"the server sent invalid usage ({type(exc).__name__}: {exc})") from None


class UserNamespace(_Namespace):
    """``aither.user``: the user the API key belongs to."""

    def __repr__(self) -> str:
        return "<aither.user>"

    def me(self) -> User:
        data = as_object(self._client.request("GET", "/api/v1/users/me"))
        try:
            return User(
                id=str(data["id"]),
                email=str(data["email"]),
                name=str(data.get("name", "")),
                role=str(data["role"]),
            )
        except KeyError as exc:
            raise APIError(f"the server's user lacks {exc.args[0]!r}") from None


class ApiKeys(_Namespace):
    """``aither.api_keys``: list, create and revoke API keys (the calling key needs the ``admin`` scope)."""

    def __repr__(self) -> str:
        return "<aither.api_keys>"

    def list(self) -> builtins.list[ApiKey]:
        data = as_object(self._client.request("GET", "/api/v1/api-keys"))
        # A list never carries secrets, even if a server sent one.
        return [_api_key(item) for item in data_list(data, "key list")]

    def create(self, name: str, scopes: Iterable[str] = ("read", "write")) -> ApiKey:
        """A new key; its secret is in the returned ``ApiKey.secret`` and nowhere else. Keep it safe now:
        the server stores only a hash and cannot show it again."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("name must be a non-empty string")
        if isinstance(scopes, str):
            scopes = [scopes]
        scope_list = [str(s) for s in scopes]
        if not scope_list:
            raise ValueError("scopes must name at least one of 'read', 'write', 'admin'")
        data = as_object(self._client.request("POST", "/api/v1/api-keys", json={"name": name, "scopes": scope_list}))
        return _api_key(data, with_secret=True)

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key; the server refuses it from the next request on."""
        if not isinstance(key_id, str) or not key_id:
            raise ValueError("key_id must be a non-empty string")
        data = as_object(self._client.request("DELETE", "/api/v1/api-keys/" + quote(key_id, safe="")))
        return _api_key(data)


class ServerPrivacy(_Namespace):
    """``aither.server_privacy``: the server's privacy policies, erasure and audit log (the ``admin`` scope;
    docs/privacy.md). Answers are the server's JSON objects."""

    def __repr__(self) -> str:
        return "<aither.server_privacy>"

    def policies(self) -> builtins.list[dict[str, object]]:
        answer = as_object(self._client.request("GET", "/api/v1/privacy/policies"))
        return [dict(item) for item in data_list(answer, "policy list")]

    def set_policy(self, model: str, columns: Mapping[str, str], *, scrub: bool | None = None) -> dict[str, object]:
        """Set ``model``'s policy (``"*"``: the organisation's); ``columns`` maps names or patterns to ``drop``,
        ``refuse``, ``hash``, ``round``, ``round:N``, ``bucket:W`` or ``keep``."""
        body = {"columns": dict(columns), "scrub": scrub}
        return dict(as_object(self._client.request("PUT", _policy_path(model), json=body)))

    def delete_policy(self, model: str) -> None:
        self._client.request("DELETE", _policy_path(model))

    def erase(
        self, *, trace_id: str | None = None, entity: str | int | None = None, sketches: bool = False
    ) -> dict[str, object]:
        """Erase every stored prediction and label of a trace or of an entity; the counts erased. An entity is
        sent as ``aither.entity_key(entity)`` (never the value), so this needs ``AITHER_HASH_KEY``."""
        if (trace_id is None) == (entity is None):
            raise ValueError("erase takes trace_id or entity")
        if entity is not None:
            from ._entity import entity_key

            body: dict[str, object] = {"entity": entity_key(entity)}
        else:
            body = {"trace_id": trace_id}
        if sketches:
            body["sketches"] = True
        return dict(as_object(self._client.request("POST", "/api/v1/erasures", json=body)))

    def audit_log(self, limit: int = 100) -> builtins.list[dict[str, object]]:
        """The newest ``limit`` entries (policy changes, erasures), newest first."""
        answer = as_object(self._client.request("GET", f"/api/v1/audit-log?limit={int(limit)}"))
        return [dict(item) for item in data_list(answer, "audit log")]


def _policy_path(model: str) -> str:
    if not isinstance(model, str) or not model:
        raise ValueError("model must be a model's name, or '*' for the organisation's policy")
    return "/api/v1/privacy/policies/" + quote(model, safe="*")


org = Org()
user = UserNamespace()
api_keys = ApiKeys()
server_privacy = ServerPrivacy()
