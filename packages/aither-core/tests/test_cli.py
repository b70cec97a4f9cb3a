"""The ``aither`` command finds its subcommands through the ``aither.commands`` entry-point group."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from aither import _cli


def test_core_never_imports_the_server_package() -> None:
    source = Path(_cli.__file__).read_text()
    assert "aither_server" not in source


def test_a_registered_command_is_called_with_the_arguments_after_its_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[list[str]] = []

    def hello(argv: list[str]) -> int:
        """Say hello."""
        calls.append(argv)
        return 3

    entry_point = importlib.metadata.EntryPoint("hello", f"{__name__}:hello", _cli.COMMANDS_GROUP)
    monkeypatch.setattr(entry_point.__class__, "load", lambda self: hello)
    monkeypatch.setattr(_cli, "_commands", lambda: {"hello": entry_point})
    assert _cli.main(["hello", "--x", "1"]) == 3
    assert calls == [["--x", "1"]]
    assert _cli.main(["--help"]) == 0
    assert "hello     Say hello." in capsys.readouterr().out


def test_server_without_aither_server_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_cli, "_commands", dict)
    assert _cli.main(["server"]) == 2
    assert "this command needs aither-server: pip install" in capsys.readouterr().err


def test_version_is_a_command_and_an_option(capsys: pytest.CaptureFixture[str]) -> None:
    from aither import __version__

    for spelling in ("version", "--version", "-V"):
        assert _cli.main([spelling]) == 0
        assert capsys.readouterr().out.strip() == __version__


def test_an_unknown_command_is_refused_with_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_the_installed_server_registers_server_and_demo() -> None:
    commands = _cli._commands()
    if "server" not in commands:
        pytest.skip("aither-server is not installed")
    assert commands["server"].value == "aither_server.cli:main"
    assert commands["demo"].value == "aither_server.demo:main"
