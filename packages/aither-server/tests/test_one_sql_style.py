"""One way to write a statement (issue 20): the server's SQL over its tables is SQLAlchemy Core, run through
``store/engine.py``'s ``run`` / ``run_many`` or an SQLAlchemy connection. Read from the source with ``ast``: no
call hands a driver an SQL string together with parameters, so no statement depends on a placeholder spelling
and nothing rewrites one. Parameterless strings stay for the engines' own commands (``BEGIN``, ``PRAGMA``, a
temporary table of the writer's connection), and for the frozen Alembic revisions' own one-off back-fills
without parameters (written once, in the SQL of the schema they migrate, like their DDL)."""

from __future__ import annotations

import ast
from pathlib import Path

import aither_server

PACKAGE = Path(aither_server.__file__).parent
_EXECUTES = {"execute", "executemany", "exec_driver_sql"}
_DML = {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "REPLACE"}
_ENGINE_COMMANDS = ("temp.", "pg_advisory_xact_lock")


def _is_text(node: ast.expr | None) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    return isinstance(node, ast.BinOp) and _is_text(node.left) and _is_text(node.right)


def _text_names(tree: ast.Module, nodes: list[ast.stmt] | None = None) -> set[str]:
    """Names bound to SQL text (a string, an f-string, or strings joined): at module level, or anywhere."""
    found: set[str] = set()
    for node in nodes if nodes is not None else list(ast.walk(tree)):
        if isinstance(node, ast.Assign) and _is_text(node.value):
            found.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and _is_text(node.value):
            found.add(node.target.id)
    return found


def _reads_or_writes_a_table(sql: ast.expr) -> bool:
    """A query or a change of rows (not an engine's command: a lock, a temporary table of one connection's)."""
    text = ast.unparse(sql)
    words = text.strip("f'\"( ").split()
    return bool(words) and words[0].upper() in _DML and not any(engine in text for engine in _ENGINE_COMMANDS)


def _text_with_parameters() -> list[str]:
    trees = {path: ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))}
    # A module's text constants, by name, for the modules that import them.
    exported = set().union(*(_text_names(tree, tree.body) for tree in trees.values()))
    offences = []
    for path, tree in trees.items():
        if path.name == "engine.py" and path.parent.name == "store":
            continue  # the bridge itself hands the driver the SQL SQLAlchemy compiled
        imported = {
            alias.asname or alias.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for alias in n.names
        }
        texts = _text_names(tree) | (imported & exported)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in _EXECUTES or not node.args:
                continue
            sql = node.args[0]
            textual = _is_text(sql) or (isinstance(sql, ast.Name) and sql.id in texts)
            frozen = "alembic" in path.parts
            if textual and (len(node.args) > 1 or (_reads_or_writes_a_table(sql) and not frozen)):
                offences.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)[:100]}")
    return offences


def test_no_sql_string_is_executed_with_parameters() -> None:
    assert _text_with_parameters() == []


def test_the_placeholder_rewrite_is_gone() -> None:
    from aither_server.store import engine

    assert not hasattr(engine, "postgres_sql")
    assert not hasattr(engine, "placeholders")
