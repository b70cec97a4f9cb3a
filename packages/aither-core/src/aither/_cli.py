"""The ``aither`` command: ``aither version``, and the commands other packages register under ``aither.commands``.

aither-server registers ``server`` and ``demo``; core never imports it. An entry point of the group names a
function ``main(argv) -> int`` called with the arguments after the command's name.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    import importlib.metadata

__all__ = ["COMMANDS_GROUP", "main"]

#: The entry-point group of ``aither`` subcommands.
COMMANDS_GROUP = "aither.commands"

#: Commands of packages that may not be installed: what to install to get them, and what they do.
_KNOWN = {
    "server": ("aither-server", "run the local aither server"),
    "demo": ("aither-server", "start a local server, log predictions and labels of a model, print its metrics"),
}


def _commands() -> dict[str, importlib.metadata.EntryPoint]:
    import importlib.metadata

    found: dict[str, importlib.metadata.EntryPoint] = {}
    for entry_point in importlib.metadata.entry_points(group=COMMANDS_GROUP):
        found.setdefault(entry_point.name, entry_point)
    return found


def _summary(entry_point: importlib.metadata.EntryPoint) -> str:
    if entry_point.name in _KNOWN:
        return _KNOWN[entry_point.name][1]
    try:
        doc = entry_point.load().__doc__ or ""
    except Exception as exc:  # a broken package must not break ``aither --help``
        return f"(cannot be loaded: {type(exc).__name__})"
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _usage(commands: dict[str, importlib.metadata.EntryPoint]) -> str:
    lines = ["usage: aither <command> [options]", "", "commands:"]
    for name in sorted(commands):
        lines.append(f"  {name:<9} {_summary(commands[name])}")
    for name, (distribution, summary) in sorted(_KNOWN.items()):
        if name not in commands:
            lines.append(f"  {name:<9} {summary} (needs {distribution})")
    lines.append(f"  {'version':<9} print the aither-core version (also: aither --version)")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    commands = _commands()
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage(commands))
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command in ("version", "--version", "-V"):
        print(__version__)
        return 0
    entry_point = commands.get(command)
    if entry_point is None:
        if command in _KNOWN:
            distribution = _KNOWN[command][0]
            from ._install import install_command

            print(f"aither: this command needs {distribution}: {install_command(distribution)}", file=sys.stderr)
            return 2
        print(f"aither: unknown command {command!r}\n\n{_usage(commands)}", file=sys.stderr)
        return 2
    run: Callable[[list[str]], int] = entry_point.load()
    return int(run(rest))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
