"""Where each setting comes from: arguments > AITHER_* > opted-in OTEL_EXPORTER_OTLP_* > defaults."""

from __future__ import annotations

import pytest

import aither
from aither._config import load_settings
from aither._export._resource import resource_attributes
from aither.testing import OTLPReceiver

OTEL = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
    "OTEL_EXPORTER_OTLP_HEADERS": "x-team=ml%20ops,authorization=Bearer%20other",
    "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
    "OTEL_EXPORTER_OTLP_COMPRESSION": "none",
}


@pytest.mark.parametrize(
    "given",
    [
        "http://127.0.0.1:6006",
        "http://127.0.0.1:6006/",
        "http://127.0.0.1:6006/v1/traces",
        "http://127.0.0.1:6006/v1/metrics",
    ],
)
def test_a_base_url_is_accepted_with_or_without_its_otlp_path(given: str) -> None:
    settings = load_settings({}, base_url=given)
    assert settings.base_url == "http://127.0.0.1:6006"
    assert settings.traces_url == "http://127.0.0.1:6006/v1/traces"
    assert settings.metrics_url == "http://127.0.0.1:6006/v1/metrics"


def test_a_phoenix_style_full_url_in_the_environment_delivers() -> None:
    with OTLPReceiver() as receiver:
        aither.init(api_key="aith_k", base_url=receiver.url + "/v1/traces", flush_interval=0.05)
        trace_id = aither.log_prediction("phoenix", {"x": 1}, 1)
        assert aither.flush(timeout=10)
        assert [span.trace_id for span in receiver.spans] == [trace_id]
        assert receiver.requests[0].path == "/v1/traces"


def test_otel_exporter_variables_are_ignored_unless_opted_in() -> None:
    settings = load_settings(OTEL)
    assert settings.traces_url == "https://aither.computer/v1/traces"
    assert settings.headers == {}
    assert settings.export_timeout == 10.0
    assert settings.compression == "auto"


def test_opted_in_otel_variables_fill_what_nothing_else_set() -> None:
    settings = load_settings({**OTEL, "AITHER_USE_OTEL_ENV": "true"})
    assert settings.traces_url == "http://collector:4318/v1/traces"
    assert settings.metrics_url == "http://collector:4318/v1/metrics"
    assert settings.headers == {"x-team": "ml ops", "authorization": "Bearer other"}
    assert settings.export_timeout == 2.5  # OTEL_EXPORTER_OTLP_TIMEOUT is in milliseconds
    assert settings.compression == "none"
    assert settings.base_url == "https://aither.computer"  # management calls keep AITHER_BASE_URL's default
    assert settings.send_api_key is False  # the aither key does not follow an OTel endpoint


def test_signal_endpoints_are_used_as_they_are() -> None:
    env = {
        "AITHER_USE_OTEL_ENV": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:9000/custom/path",
    }
    settings = load_settings(env)
    assert settings.traces_url == "http://traces:9000/custom/path"
    assert settings.metrics_url == "http://collector:4318/v1/metrics"


def test_aither_variables_win_over_otel_ones_and_arguments_win_over_both() -> None:
    env = {**OTEL, "AITHER_USE_OTEL_ENV": "true", "AITHER_BASE_URL": "http://aither-env:4318"}
    settings = load_settings(env)
    assert settings.traces_url == "http://aither-env:4318/v1/traces"
    assert settings.send_api_key is True
    assert settings.export_timeout == 2.5  # no AITHER_ variable for it: the opted-in OTel one applies
    settings = load_settings(env, base_url="http://argument:1", export_timeout=7.0, compression="gzip")
    assert settings.traces_url == "http://argument:1/v1/traces"
    assert settings.export_timeout == 7.0
    assert settings.compression == "gzip"


def test_use_otel_env_as_an_argument() -> None:
    settings = load_settings(OTEL, use_otel_env=True)
    assert settings.traces_url == "http://collector:4318/v1/traces"


def test_the_key_only_reaches_an_otel_endpoint_in_the_headers_the_user_gives() -> None:
    with OTLPReceiver() as receiver:
        env = {"AITHER_USE_OTEL_ENV": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            patch.delenv("AITHER_BASE_URL", raising=False)
            aither.init(api_key="aith_secret", flush_interval=0.05)
        aither.log_prediction("otel", {"x": 1}, 1)
        assert aither.flush(timeout=10)
        (request,) = receiver.requests
        assert "authorization" not in request.headers


def test_headers_never_show_in_a_repr() -> None:
    settings = load_settings({}, api_key="aith_secret", headers={"authorization": "Bearer aith_secret"})
    assert "aith_secret" not in repr(settings)


def test_service_name_argument_wins_over_the_environment() -> None:
    assert resource_attributes("from-init", {"OTEL_SERVICE_NAME": "from-env"})["service.name"] == "from-init"
    assert resource_attributes(None, {"OTEL_SERVICE_NAME": "from-env"})["service.name"] == "from-env"
    attributes = resource_attributes(None, {"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-resource"})
    assert attributes["service.name"] == "from-resource"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"base_url": "127.0.0.1:4318"}, "must start with http"),
        ({"traces_endpoint": "ftp://x"}, "must start with http"),
        ({"headers": {"x": 1}}, "headers must map"),
    ],
)
def test_bad_settings_fail_at_once(options: dict[str, object], message: str) -> None:
    with pytest.raises(aither.ConfigurationError, match=message):
        load_settings({}, **options)


def test_a_bad_otel_timeout_names_the_variable() -> None:
    with pytest.raises(aither.ConfigurationError, match="OTEL_EXPORTER_OTLP_TIMEOUT"):
        load_settings({"AITHER_USE_OTEL_ENV": "1", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"})
