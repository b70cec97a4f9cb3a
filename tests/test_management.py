"""aither.org / aither.user / aither.api_keys against the real local server, and the README snippet as written."""

from __future__ import annotations

import contextlib
import io
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import aither
from aither import _client
from aither._config import Settings
from aither._management import ApiKeys, ManagementClient, Org, UserNamespace
from aither_server import ServerThread, Store

ADMIN_KEY = "aith_mgmt_admin_key_0123456789"

# The "Management API" section of the SDK README, verbatim.
README_SNIPPET = """
import aither

aither.init()

# Organization info
org = aither.org.get()
print(org.name, org.plan)

# Usage stats for current billing period
usage = aither.org.usage()
print(f"API calls: {usage.api_calls}")

# Current user
me = aither.user.me()
print(me.email)

# API key management (requires admin scope)
keys = aither.api_keys.list()
new_key = aither.api_keys.create(name="Production", scopes=["read", "write"])
aither.api_keys.revoke(key_id="...")
"""


@pytest.fixture
def server_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real server; AITHER_API_KEY / AITHER_BASE_URL point at it, as a user would set them."""
    store = Store(tmp_path / "aither.db")
    store.bootstrap(ADMIN_KEY)
    previous = _client.get_client()
    with ServerThread(store) as thread:
        monkeypatch.setenv("AITHER_API_KEY", ADMIN_KEY)
        monkeypatch.setenv("AITHER_BASE_URL", thread.url)
        _client.init()
        try:
            yield thread.url
        finally:
            _client.get_client().exporter.close(timeout=5)
            _client.restore(previous)


def _run_snippet(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    return out.getvalue()


def test_readme_management_snippet_runs_with_its_placeholder_key_id_filled_in(server_url: str) -> None:
    code = README_SNIPPET.replace('key_id="..."', "key_id=new_key.id")
    printed = _run_snippet(code).splitlines()
    assert printed[0] == "local local"
    assert printed[1].startswith("API calls: ")
    assert printed[2].endswith("@localhost")
    (production,) = [k for k in aither.api_keys.list() if k.name == "Production"]
    assert production.revoked and production.scopes == ("read", "write")


def test_readme_snippet_as_written_revokes_placeholder_id_and_gets_not_found(server_url: str) -> None:
    with pytest.raises(aither.NotFoundError) as caught:
        _run_snippet(README_SNIPPET)
    assert caught.value.status_code == 404


def test_namespaces_return_frozen_snapshots(server_url: str) -> None:
    org = aither.org.get()
    usage = aither.org.usage()
    me = aither.user.me()
    assert isinstance(org, aither.Organization) and org.created_at is not None
    assert isinstance(usage, aither.Usage) and usage.period_start < usage.period_end
    assert usage.api_calls >= 2
    assert isinstance(me, aither.User) and me.role == "admin"
    with pytest.raises(AttributeError):
        org.name = "changed"  # type: ignore[misc]


def test_created_key_secret_is_only_in_the_secret_field_and_works(server_url: str) -> None:
    created = aither.api_keys.create("ci", scopes=["read"])
    assert created.secret is not None and created.secret.startswith("aith_")
    assert created.secret not in repr(created) and created.secret not in str(created)
    assert "secret='<hidden>'" in repr(created)
    listed = {k.id: k for k in aither.api_keys.list()}
    assert listed[created.id].secret is None
    reader = ManagementClient(Settings(api_key=created.secret, base_url=server_url))
    assert Org(reader).get().plan == "local"
    with pytest.raises(aither.PermissionDeniedError) as denied:
        ApiKeys(reader).list()
    assert denied.value.status_code == 403
    assert created.secret not in str(denied.value)


def test_revoked_key_raises_authentication_error_on_the_next_call(server_url: str) -> None:
    created = aither.api_keys.create("temp", scopes=["read"])
    assert created.secret is not None
    client = ManagementClient(Settings(api_key=created.secret, base_url=server_url))
    assert UserNamespace(client).me().role == "member"
    revoked = aither.api_keys.revoke(created.id)
    assert revoked.revoked is True and revoked.secret is None
    with pytest.raises(aither.AuthenticationError) as caught:
        UserNamespace(client).me()
    assert caught.value.status_code == 401
    assert created.secret not in str(caught.value) and created.secret not in repr(caught.value)


def test_unknown_key_raises_authentication_error_without_echoing_the_key(server_url: str) -> None:
    wrong = "aith_wrong_key_wrong_key_0000"
    with pytest.raises(aither.AuthenticationError) as caught:
        Org(ManagementClient(Settings(api_key=wrong, base_url=server_url))).get()
    assert wrong not in str(caught.value)


def test_missing_key_raises_authentication_error_before_any_request() -> None:
    with pytest.raises(aither.AuthenticationError):
        Org(ManagementClient(Settings(api_key=None, base_url="http://127.0.0.1:9"))).get()


def test_invalid_create_arguments_raise_value_error_or_api_error(server_url: str) -> None:
    with pytest.raises(ValueError):
        aither.api_keys.create("", scopes=["read"])
    with pytest.raises(aither.APIError) as caught:
        aither.api_keys.create("x", scopes=["superuser"])
    assert caught.value.status_code == 400


def test_revoking_the_last_admin_key_is_an_api_error_409(server_url: str) -> None:
    (admin,) = [k for k in aither.api_keys.list() if "admin" in k.scopes]
    with pytest.raises(aither.APIError) as caught:
        aither.api_keys.revoke(admin.id)
    assert caught.value.status_code == 409


def test_unreachable_server_raises_api_connection_error_without_the_key() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connection refused
        key = "aith_secret_secret_secret_1234"
        client = ManagementClient(Settings(api_key=key, base_url=f"http://user:pw@127.0.0.1:{port}"), timeout=2)
        with pytest.raises(aither.APIConnectionError) as caught:
            Org(client).get()
    assert key not in str(caught.value) and "pw" not in str(caught.value)


def test_429_raises_rate_limit_error_with_retry_after(tmp_path: Path) -> None:
    # A stand-in HTTP server that only rate-limits: the real server has no rate limit to trigger.
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Limited(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"error": {"type": "rate_limited", "message": "slow down"}}'
            self.send_response(429)
            self.send_header("Retry-After", "7")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Limited)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        with pytest.raises(aither.RateLimitError) as caught:
            Org(ManagementClient(Settings(api_key="aith_k_k_k_k_k", base_url=url))).usage()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert caught.value.retry_after == 7.0
    assert "slow down" in str(caught.value)


def test_settings_are_read_at_call_time_so_a_later_init_is_honoured(server_url: str) -> None:
    assert aither.org.get().plan == "local"
    previous = _client.get_client()
    try:
        aither.init(api_key="aith_not_a_real_key_123", base_url=server_url)
        with pytest.raises(aither.AuthenticationError):
            aither.org.get()
    finally:
        _client.get_client().exporter.close(timeout=5)
        _client.restore(previous)
    assert aither.org.get().plan == "local"


def test_namespace_reprs_hold_no_key(server_url: str) -> None:
    for obj in (aither.org, aither.user, aither.api_keys, ManagementClient()):
        assert ADMIN_KEY not in repr(obj)
