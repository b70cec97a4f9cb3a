"""What a new user meets: install advice, error messages that name what failed, and helpers that just work."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

import aither
from aither import _plugins
from aither._install import PLUGIN_FOR_FRAMEWORK, install_command
from aither.testing import OTLPReceiver, run_python

REPOSITORY = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("distribution", sorted(set(PLUGIN_FOR_FRAMEWORK.values()) | {"aither-server"}))
def test_install_advice_from_a_clone_is_the_package_folder(distribution: str) -> None:
    command = install_command(distribution)
    assert command == f"pip install {REPOSITORY / 'packages' / distribution}"
    assert "aither[" not in command


def test_the_cli_never_advises_the_unrelated_package() -> None:
    source = (REPOSITORY / "packages/aither-core/src/aither/_cli.py").read_text()
    assert "aither[" not in source


def test_a_model_whose_plugin_is_missing_says_which_to_install(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # No plugin registered at all, as in an environment where only aither-core is installed.
    monkeypatch.setattr(_plugins, "_entry_points", dict)
    monkeypatch.setattr(_plugins, "_missing_warned", set())
    from sklearn.linear_model import LinearRegression

    caplog.set_level(logging.WARNING, logger="aither")
    aither.wrap(LinearRegression(), name="plain")
    aither.wrap(LinearRegression(), name="again")
    warnings = [r.getMessage() for r in caplog.records if "not installed" in r.getMessage()]
    assert len(warnings) == 1  # once per framework
    assert "aither-sklearn is not installed" in warnings[0]
    assert install_command("aither-sklearn") in warnings[0]


def test_capture_works_after_import_aither_alone() -> None:
    result = run_python(
        """
        import aither
        with aither.testing.capture() as captured:
            aither.log_prediction("m", {"x": 1}, 1)
        print(len(captured.spans))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_management_errors_name_the_call_and_the_servers_answer() -> None:
    with OTLPReceiver() as receiver:  # answers POST only: a GET gets 501 from the standard library
        aither.init(api_key="aith_k", base_url=receiver.url)
        with pytest.raises(aither.APIError) as raised:
            aither.org.get()
    message = str(raised.value)
    assert message.startswith(f"GET {receiver.url}/api/v1/org answered 501")


def test_an_unreachable_server_says_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    aither.init(api_key="aith_k", base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(aither.APIConnectionError, match="connection refused"):
        aither.org.get()


def test_the_first_delivery_failure_is_logged_at_once_with_url_and_cause(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    caplog.set_level(logging.WARNING, logger="aither")
    aither.init(api_key="aith_secret", base_url=f"http://127.0.0.1:{port}", max_retry_time=0.5, initial_backoff=0.05)
    aither.log_prediction("m", {"x": 1}, 1)
    aither.flush(timeout=5)
    failures = [r.getMessage() for r in caplog.records if "cannot deliver" in r.getMessage()]
    assert failures[0].startswith(
        f"aither: cannot deliver to http://127.0.0.1:{port}/v1/traces: connection refused; will retry in "
    )
    assert len([m for m in failures if "/v1/traces" in m]) == 1  # later attempts within the minute stay quiet
    assert all("aith_secret" not in r.getMessage() for r in caplog.records)


def test_recovery_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    from aither.testing import Fault

    caplog.set_level(logging.WARNING, logger="aither")
    with OTLPReceiver() as receiver:
        aither.init(api_key="aith_k", base_url=receiver.url, initial_backoff=0.05, flush_interval=0.05)
        receiver.fail(Fault(503, body=b'{"error": {"message": "warming up"}}'))
        aither.log_prediction("m", {"x": 1}, 1)
        assert aither.flush(timeout=10)
    messages = [r.getMessage() for r in caplog.records]
    retried = f"aither: cannot deliver to {receiver.url}/v1/traces: HTTP 503: warming up; will retry in "
    assert [m for m in messages if m.startswith(retried)]
    assert sum("works again" in m for m in messages) == 1
