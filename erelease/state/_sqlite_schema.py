"""The SQLite registry schema, as numbered migrations recorded in the file itself.

A state file outlives the erelease that wrote it: a newer erelease must bring
an old file forward (each migration once, recorded in ``schema_migrations``),
and an older erelease must refuse a file from the future rather than
misread it. A new file is built aside and hard-linked into place, so nobody
ever opens a half-made registry. Migrations are lists of single statements because
``executescript`` would commit half-way and break the all-or-nothing upgrade.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path

from erelease.errors import StateError
from erelease.state._common import now_iso

__all__ = ["LATEST", "MIGRATIONS", "create_file", "migrate"]

_APPEND_ONLY = """
CREATE TRIGGER {table}_append_only_{op} BEFORE {op} ON {table}
BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END
"""

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "registry: stacks, connections, last tests, history, locks, tokens, disclosures",
        [
            """CREATE TABLE stacks (
                stack TEXT PRIMARY KEY,
                lineage TEXT NOT NULL,
                serial INTEGER NOT NULL CHECK (serial >= 0),
                created_at TEXT NOT NULL)""",
            """CREATE TABLE connections (
                stack TEXT NOT NULL REFERENCES stacks(stack),
                kind TEXT NOT NULL CHECK (kind IN ('outgoing', 'incoming')),
                name TEXT NOT NULL,
                spec TEXT NOT NULL,
                secret_versions TEXT NOT NULL,
                outputs TEXT NOT NULL,
                labels TEXT NOT NULL,
                protect INTEGER NOT NULL,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                client_id TEXT,
                secret_sha256 TEXT,
                PRIMARY KEY (stack, kind, name)) WITHOUT ROWID""",
            """CREATE UNIQUE INDEX connections_client
                ON connections (stack, client_id) WHERE client_id IS NOT NULL""",
            """CREATE TABLE last_tests (
                stack TEXT NOT NULL,
                kind TEXT NOT NULL,
                name TEXT NOT NULL,
                status TEXT NOT NULL,
                reason TEXT NOT NULL,
                message TEXT NOT NULL,
                duration_ms INTEGER NOT NULL,
                checked_at TEXT NOT NULL,
                PRIMARY KEY (stack, kind, name)) WITHOUT ROWID""",
            """CREATE TABLE history (
                stack TEXT NOT NULL REFERENCES stacks(stack),
                serial INTEGER NOT NULL,
                applied_at TEXT NOT NULL,
                actor TEXT NOT NULL,
                git_commit TEXT,
                summary TEXT NOT NULL,
                changes TEXT NOT NULL,
                PRIMARY KEY (stack, serial))""",
            _APPEND_ONLY.format(table="history", op="UPDATE"),
            _APPEND_ONLY.format(table="history", op="DELETE"),
            """CREATE TABLE locks (
                stack TEXT PRIMARY KEY,
                lock_id TEXT NOT NULL UNIQUE,
                holder TEXT NOT NULL,
                host TEXT NOT NULL,
                pid INTEGER NOT NULL,
                operation TEXT NOT NULL,
                since TEXT NOT NULL,
                proc_start TEXT)""",
            """CREATE TABLE tokens (
                stack TEXT NOT NULL,
                token_sha256 TEXT NOT NULL,
                client_id TEXT NOT NULL,
                connection TEXT NOT NULL,
                secret_sha256 TEXT NOT NULL,
                expires_at REAL NOT NULL,
                PRIMARY KEY (stack, token_sha256)) WITHOUT ROWID""",
            "CREATE INDEX tokens_expiry ON tokens (expires_at)",
            """CREATE TABLE disclosures (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                stack TEXT NOT NULL,
                connection TEXT NOT NULL,
                client_id TEXT NOT NULL,
                document_id TEXT NOT NULL,
                released_at TEXT NOT NULL,
                remote_addr TEXT NOT NULL)""",
            "CREATE INDEX disclosures_time ON disclosures (stack, released_at, id)",
            _APPEND_ONLY.format(table="disclosures", op="UPDATE"),
            _APPEND_ONLY.format(table="disclosures", op="DELETE"),
        ],
    ),
]

LATEST = MIGRATIONS[-1][0]

_TRACK = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"""


def _current(conn: sqlite3.Connection) -> int | None:
    try:
        row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return int(row[0]) if row and row[0] is not None else 0


def _check_not_newer(version: int | None, where: str) -> None:
    if version is not None and version > LATEST:
        raise StateError(
            f"the state file {where} has schema version {version}, newer than this "
            f"erelease understands ({LATEST}); upgrade erelease"
        )


def migrate(conn: sqlite3.Connection, *, where: str) -> None:
    """Bring the schema to :data:`LATEST` in one transaction (a no-op when current).

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    version = _current(conn)
    _check_not_newer(version, where)
    if version == LATEST:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_TRACK)
        applied = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
        _check_not_newer(max(applied, default=0), where)
        for number, name, statements in MIGRATIONS:
            if number in applied:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (number, name, now_iso()),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def create_file(path: Path) -> None:
    """Create the state file atomically, mode 0600, in a 0700 directory if new."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        os.close(fd)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            migrate(conn, where=str(path))
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first; that one is as good
        except OSError:  # a file system without hard links
            if not path.exists():
                os.replace(tmp, path)
    finally:
        for leftover in (tmp, f"{tmp}-wal", f"{tmp}-shm", f"{tmp}-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
