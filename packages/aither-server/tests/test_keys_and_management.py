"""API keys (hashed, scoped, revocable), bootstrap, the organisation, the user and usage."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Server
from otlp_builders import KEY, label_span, new_trace_id, prediction_span
from processes import free_port, wait_serving

from aither_server import Store
from aither_server.store.migrations import HEAD, LEGACY_VERSION, SchemaTooNew, migrate, revision_of


def test_created_key_is_shown_once_and_stored_only_as_a_hash(server: Server) -> None:
    response = server.http.post("/api/v1/api-keys", json={"name": "prod", "scopes": ["read", "write"]})
    assert response.status_code == 201
    created = response.json()
    secret = created["secret"]
    assert secret.startswith("aith_") and len(secret) > 40
    assert created["prefix"] == secret[:12]
    listed = server.get("/api/v1/api-keys")["data"]
    assert all("secret" not in k for k in listed)
    assert {k["name"] for k in listed} == {"bootstrap", "prod"}
    stored = [r[0] for r in server.sql("SELECT hash FROM api_keys")]
    assert hashlib.sha256(secret.encode()).digest() in stored
    assert secret.encode() not in server.stored_bytes()


def test_read_key_can_query_but_not_manage_keys(server: Server) -> None:
    reader = server.http.post("/api/v1/api-keys", json={"name": "dash", "scopes": ["read"]}).json()
    h = {"Authorization": f"Bearer {reader['secret']}"}
    assert server.raw.get("/api/v1/models", headers=h).status_code == 200
    assert server.raw.get("/api/v1/users/me", headers=h).json()["role"] == "member"
    denied = server.raw.get("/api/v1/api-keys", headers=h)
    assert denied.status_code == 403
    assert denied.json()["error"]["type"] == "permission_denied"
    assert server.raw.post("/api/v1/api-keys", headers=h, json={"name": "x"}).status_code == 403


def test_write_only_key_cannot_read(server: Server) -> None:
    writer = server.http.post("/api/v1/api-keys", json={"name": "svc", "scopes": ["write"]}).json()
    assert server.raw.get("/api/v1/org", headers={"Authorization": f"Bearer {writer['secret']}"}).status_code == 403


def test_every_api_route_refuses_a_missing_or_malformed_key(server: Server) -> None:
    for path in ("/api/v1/org", "/api/v1/org/usage", "/api/v1/users/me", "/api/v1/api-keys", "/api/v1/models"):
        assert server.raw.get(path).status_code == 401
        assert server.raw.get(path, headers={"Authorization": "Basic abc"}).status_code == 401
        assert server.raw.get(path, headers={"Authorization": "Bearer aith_nope_nope_nope"}).status_code == 401


def test_revoking_answers_the_key_marked_revoked_and_unknown_ids_are_404(server: Server) -> None:
    created = server.http.post("/api/v1/api-keys", json={"name": "tmp", "scopes": ["read"]}).json()
    revoked = server.http.delete(f"/api/v1/api-keys/{created['id']}").json()
    assert revoked["revoked"] is True
    assert "secret" not in revoked
    assert server.raw.get("/api/v1/org", headers={"Authorization": f"Bearer {created['secret']}"}).status_code == 401
    assert server.http.delete("/api/v1/api-keys/key_doesnotexist").status_code == 404


def test_the_last_admin_key_cannot_be_revoked(server: Server) -> None:
    (admin,) = server.get("/api/v1/api-keys")["data"]
    response = server.http.delete(f"/api/v1/api-keys/{admin['id']}")
    assert response.status_code == 409
    assert server.get("/api/v1/org")["plan"] == "local"


@pytest.mark.parametrize(
    "body", [{"name": "", "scopes": ["read"]}, {"name": "x", "scopes": []}, {"name": "x", "scopes": ["root"]}, {}]
)
def test_invalid_key_requests_are_400(server: Server, body: dict[str, object]) -> None:
    response = server.http.post("/api/v1/api-keys", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"


def test_usage_counts_calls_and_rows_of_the_current_month(server: Server) -> None:
    trace_id = new_trace_id()
    server.ingest([prediction_span("clf", [1, 0, 1], trace_id=trace_id), prediction_span("clf", 1)])
    server.ingest([label_span(trace_id, [1, 1, 1])])
    server.get("/api/v1/models")
    usage = server.get("/api/v1/org/usage")
    assert (usage["predictions"], usage["labels"]) == (4, 3)
    assert usage["api_calls"] == 4  # two ingestions, the model list, this usage call
    assert usage["period_start"].endswith("-01T00:00:00Z")
    assert usage["period_start"] < usage["period_end"]


def test_org_and_user_describe_the_local_server(server: Server) -> None:
    org = server.get("/api/v1/org")
    assert org["id"].startswith("org_") and org["plan"] == "local"
    me = server.get("/api/v1/users/me")
    assert me["role"] == "admin" and "@" in me["email"]


def test_healthz_needs_no_key_and_openapi_is_served(server: Server) -> None:
    assert server.raw.get("/healthz").json()["status"] == "ok"
    paths = server.raw.get("/openapi.json").json()["paths"]
    assert {"/v1/traces", "/api/v1/models/{name}/metrics", "/api/v1/api-keys/{key_id}"} <= set(paths)


def test_new_database_gets_one_generated_admin_key_and_bootstrap_key_is_added_once(database: Path | str) -> None:
    store = Store(database)
    try:
        first = store.bootstrap()
        assert first is not None and first.startswith("aith_")
        assert store.bootstrap() is None
        assert store.authenticate(first) is not None
        assert store.bootstrap("aith_known_key_for_scripts") is None
        assert store.bootstrap("aith_known_key_for_scripts") is None
        assert [k.name for k in store.list_keys()] == ["admin", "bootstrap"]
        with pytest.raises(ValueError):
            store.bootstrap("not-a-key")
    finally:
        store.close()


def test_a_database_is_migrated_to_the_newest_revision_once_on_either_engine(database: Path | str) -> None:
    Store(database).close()
    Store(database).close()  # a second server finds it migrated
    assert revision_of(database) == HEAD


def test_the_database_variable_names_the_database_and_a_password_is_never_printed(database: Path | str) -> None:
    port = free_port()
    target = str(database)
    if isinstance(database, str):  # PostgreSQL trusts local connections here, so any password is accepted
        target = target.replace("postgres@", "postgres:hunter2secret@", 1)
    env = {**os.environ, "AITHER_DATABASE_URL": target, "AITHER_BOOTSTRAP_KEY": KEY}
    cmd = [sys.executable, "-m", "aither_server", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        wait_serving(proc, f"http://127.0.0.1:{port}/api/v1/models", **_bearer())
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert "hunter2secret" not in output
    shown = target.replace(":hunter2secret@", ":***@") if isinstance(database, str) else target
    assert f"(database: {shown})" in output


def test_migrations_run_once_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "a.db").close()
    Store(tmp_path / "a.db").close()
    assert revision_of(tmp_path / "a.db") == HEAD
    with sqlite3.connect(tmp_path / "a.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute("UPDATE alembic_version SET version_num = 'f00d'")
    with pytest.raises(SchemaTooNew):
        Store(tmp_path / "a.db")


def legacy_database(path: Path, version: int) -> None:
    """A database as the hand-written migration runner left it at ``version`` (before Alembic)."""
    migrate(path, f"{version:04d}")
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("DROP TABLE alembic_version")
        conn.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
            " applied_ns INTEGER NOT NULL)"
        )
        conn.executemany("INSERT INTO schema_version VALUES (?, 'step', 0)", [(v,) for v in range(1, version + 1)])


@pytest.mark.parametrize("version", [1, 3, LEGACY_VERSION])
def test_a_database_of_the_hand_written_runner_upgrades_in_place(tmp_path: Path, version: int) -> None:
    db = tmp_path / "old.db"
    legacy_database(db, version)
    with sqlite3.connect(db, isolation_level=None) as conn:
        conn.execute("INSERT INTO api_keys (id, name, prefix, hash, scopes, created_ns) VALUES ('key_old', 'old',"
                     " 'aith_old', x'00', 'admin', 1)")  # fmt: skip
    store = Store(db)
    try:
        assert [k.id for k in store.list_keys()] == ["key_old"]
    finally:
        store.close()
    assert revision_of(db) == HEAD
    with sqlite3.connect(db) as conn:
        # An older server reading schema_version refuses the file rather than misreading it.
        assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] > LEGACY_VERSION
    Store(db).close()  # and this server opens it again as it is


def test_a_database_of_a_newer_hand_written_runner_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    legacy_database(db, LEGACY_VERSION)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_version VALUES (?, 'from the future', 0)", (LEGACY_VERSION + 1,))
    with pytest.raises(SchemaTooNew):
        Store(db)


def _bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def test_cli_prints_the_admin_key_once_serves_healthz_and_the_key_works(database: Path | str) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "AITHER_BOOTSTRAP_KEY"}
    cmd = [sys.executable, "-m", "aither_server", "--port", str(port), "--db", str(database)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        wait_serving(proc, f"http://127.0.0.1:{port}/healthz")
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    key = next(word for word in output.split() if word.startswith("AITHER_API_KEY=aith_")).split("=", 1)[1]
    store = Store(database)
    try:
        principal = store.authenticate(key)
        assert principal is not None and principal.scopes == ("admin",)
    finally:
        store.close()


def test_defaults_are_loopback_port_4318_and_the_per_user_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aither_server import default_db_path
    from aither_server.cli import DEFAULT_PORT, build_parser

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_db_path() == tmp_path / "aither" / "aither.db"
    args = build_parser().parse_args([])
    # No --port: $AITHER_SERVER_PORT, else DEFAULT_PORT (the busy-port tests run the command with both).
    assert (args.host, args.port, args.db, DEFAULT_PORT) == ("127.0.0.1", None, None, 4318)
