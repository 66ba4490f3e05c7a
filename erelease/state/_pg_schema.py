"""The PostgreSQL registry schema: schema ``erelease``, numbered migrations.

Many stacks (a state agency's districts, a team's environments) share one
database, so every table lives in its own ``erelease`` schema and every row
is keyed by stack. Several CI runners may start against a fresh database at
once; the upgrade runs under a transaction-scoped advisory lock so exactly
one of them creates the tables and the others find them done. Text that is
sorted or compared (names, ISO times) uses the "C" collation so PostgreSQL
orders exactly as SQLite does, whatever the database's locale.
"""

from __future__ import annotations

from typing import Any

import psycopg

from erelease.errors import StateError
from erelease.state._common import now_iso

__all__ = ["LATEST", "MIGRATIONS", "SCHEMA", "migrate"]

SCHEMA = "erelease"

_C = 'TEXT COLLATE "C"'

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "registry: stacks, connections, last tests, history, locks, tokens, disclosures",
        [
            f"""CREATE TABLE erelease.stacks (
                stack {_C} PRIMARY KEY,
                lineage UUID NOT NULL,
                serial BIGINT NOT NULL CHECK (serial >= 0),
                created_at {_C} NOT NULL)""",
            f"""CREATE TABLE erelease.connections (
                stack {_C} NOT NULL REFERENCES erelease.stacks (stack),
                kind {_C} NOT NULL CHECK (kind IN ('outgoing', 'incoming')),
                name {_C} NOT NULL,
                spec JSONB NOT NULL,
                secret_versions JSONB NOT NULL,
                outputs JSONB NOT NULL,
                labels JSONB NOT NULL,
                protect BOOLEAN NOT NULL,
                created_at {_C} NOT NULL,
                updated_at {_C} NOT NULL,
                client_id TEXT,
                secret_sha256 TEXT,
                PRIMARY KEY (stack, kind, name))""",
            """CREATE UNIQUE INDEX connections_client
                ON erelease.connections (stack, client_id) WHERE client_id IS NOT NULL""",
            f"""CREATE TABLE erelease.last_tests (
                stack {_C} NOT NULL,
                kind {_C} NOT NULL,
                name {_C} NOT NULL,
                status TEXT NOT NULL,
                reason TEXT NOT NULL,
                message TEXT NOT NULL,
                duration_ms BIGINT NOT NULL,
                checked_at {_C} NOT NULL,
                PRIMARY KEY (stack, kind, name))""",
            f"""CREATE TABLE erelease.history (
                stack {_C} NOT NULL REFERENCES erelease.stacks (stack),
                serial BIGINT NOT NULL,
                applied_at {_C} NOT NULL,
                actor TEXT NOT NULL,
                git_commit TEXT,
                summary JSONB NOT NULL,
                changes JSONB NOT NULL,
                PRIMARY KEY (stack, serial))""",
            f"""CREATE TABLE erelease.locks (
                stack {_C} PRIMARY KEY,
                lock_id TEXT NOT NULL UNIQUE,
                holder TEXT NOT NULL,
                host TEXT NOT NULL,
                pid BIGINT NOT NULL,
                operation TEXT NOT NULL,
                since {_C} NOT NULL,
                backend_pid INTEGER NOT NULL)""",
            f"""CREATE TABLE erelease.tokens (
                stack {_C} NOT NULL,
                token_sha256 TEXT NOT NULL,
                client_id TEXT NOT NULL,
                connection TEXT NOT NULL,
                secret_sha256 TEXT NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (stack, token_sha256))""",
            "CREATE INDEX tokens_expiry ON erelease.tokens (expires_at)",
            f"""CREATE TABLE erelease.disclosures (
                id BIGSERIAL PRIMARY KEY,
                stack {_C} NOT NULL,
                connection TEXT NOT NULL,
                client_id TEXT NOT NULL,
                document_id TEXT NOT NULL,
                released_at {_C} NOT NULL,
                remote_addr TEXT NOT NULL)""",
            "CREATE INDEX disclosures_time ON erelease.disclosures (stack, released_at, id)",
            """CREATE FUNCTION erelease.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$""",
            """CREATE TRIGGER history_append_only BEFORE UPDATE OR DELETE ON erelease.history
                FOR EACH ROW EXECUTE FUNCTION erelease.append_only()""",
            """CREATE TRIGGER disclosures_append_only BEFORE UPDATE OR DELETE
                ON erelease.disclosures FOR EACH ROW EXECUTE FUNCTION erelease.append_only()""",
        ],
    ),
]

LATEST = MIGRATIONS[-1][0]

#: a transaction-scoped advisory lock for schema upgrades (never a stack's key:
#: those are ``erelease:<stack>``)
_UPGRADE_KEY = "SELECT pg_advisory_xact_lock(hashtextextended('erelease-schema-upgrade', 0))"


def _current(conn: psycopg.Connection[Any]) -> int | None:
    row = conn.execute("SELECT to_regclass('erelease.schema_migrations')").fetchone()
    if row is None or row[0] is None:
        return None
    row = conn.execute("SELECT max(version) FROM erelease.schema_migrations").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _check_not_newer(version: int | None, where: str) -> None:
    if version is not None and version > LATEST:
        raise StateError(
            f"the registry in {where} has schema version {version}, newer than this erelease "
            f"understands ({LATEST}); upgrade erelease"
        )


def migrate(conn: psycopg.Connection[Any], *, where: str) -> None:
    """Bring schema ``erelease`` to :data:`LATEST` (a cheap check when it is current).

    ``conn`` must be in autocommit mode; the upgrade is one transaction.
    """
    version = _current(conn)
    _check_not_newer(version, where)
    if version == LATEST:
        return
    with conn.transaction():
        conn.execute(_UPGRADE_KEY)
        conn.execute("CREATE SCHEMA IF NOT EXISTS erelease")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS erelease.schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        rows = conn.execute("SELECT version FROM erelease.schema_migrations").fetchall()
        applied = {int(r[0]) for r in rows}
        _check_not_newer(max(applied, default=0), where)
        for number, name, statements in MIGRATIONS:
            if number in applied:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO erelease.schema_migrations (version, name, applied_at) "
                "VALUES (%s, %s, %s)",
                (number, name, now_iso()),
            )
