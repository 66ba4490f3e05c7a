"""SQL that both backends run, written once with the placeholder as a parameter.

SQLite (``?``) and psycopg (``%s``) agree on everything the registry needs —
upserts with ``ON CONFLICT``, ``EXISTS``, ``executemany`` — so the queries
that define the logical model live here and the backends differ only in how
they connect, lock and translate errors. One definition of "what a commit
does" is what lets the contract tests hold both backends to the same
behaviour. ``db`` is a sqlite3 connection or a psycopg cursor.
"""

# Only placeholders and fixed table/column names are interpolated into these
# queries; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from erelease.errors import StateConflict, StateError
from erelease.model import (
    CheckResult,
    ConnectionRecord,
    Disclosure,
    HistoryEntry,
    LockInfo,
    StackInfo,
    TokenRecord,
)
from erelease.state._common import (
    ConnRow,
    decode_connection,
    decode_history,
    encode_connection,
    encode_json,
    now_iso,
)
from erelease.state.base import StackDump

Db = Any  # sqlite3.Connection | psycopg.Cursor: both have execute/executemany

_CONN_COLS = (
    "stack, kind, name, spec, secret_versions, outputs, labels, protect, created_at, "
    "updated_at, client_id, secret_sha256"
)


def _marks(p: str, n: int) -> str:
    return ", ".join([p] * n)


def read_stack(db: Db, stack: str, p: str, *, for_update: bool = False) -> StackInfo | None:
    sql = f"SELECT lineage, serial, created_at FROM stacks WHERE stack = {p}"
    row = db.execute(sql + (" FOR UPDATE" if for_update else ""), (stack,)).fetchone()
    if row is None:
        return None
    return StackInfo(stack=stack, lineage=str(row[0]), serial=int(row[1]), created_at=row[2])


def list_stacks(db: Db) -> list[StackInfo]:
    rows = db.execute("SELECT stack, lineage, serial, created_at FROM stacks ORDER BY stack")
    return [StackInfo(r[0], str(r[1]), int(r[2]), r[3]) for r in rows.fetchall()]


def select_connections(
    db: Db,
    p: str,
    stack: str,
    *,
    kind: str | None = None,
    name: str | None = None,
    client_id: str | None = None,
) -> list[ConnectionRecord]:
    sql = (
        "SELECT c.kind, c.name, c.spec, c.secret_versions, c.outputs, c.labels, c.protect, "
        "c.created_at, c.updated_at, t.status, t.reason, t.message, t.duration_ms, t.checked_at "
        "FROM connections c LEFT JOIN last_tests t "
        "ON t.stack = c.stack AND t.kind = c.kind AND t.name = c.name "
        f"WHERE c.stack = {p}"
    )
    params: list[Any] = [stack]
    if kind is not None and name is not None:
        sql += f" AND c.kind = {p} AND c.name = {p}"
        params += [kind, name]
    if client_id is not None:
        sql += f" AND c.client_id = {p}"
        params.append(client_id)
    rows = db.execute(sql + " ORDER BY c.kind, c.name", params).fetchall()
    return [decode_connection(r) for r in rows]


def find_client_auth(
    db: Db, p: str, stack: str, client_id: str
) -> tuple[str, str, str | None, Any] | None:
    """``(kind, name, client-secret digest, outputs['appName'])`` of the connection
    holding ``client_id``: what the Token URL checks on every request, read
    from the live row without decoding the rest of the record."""
    row = db.execute(
        "SELECT kind, name, secret_sha256, outputs FROM connections "
        f"WHERE stack = {p} AND client_id = {p}",
        (stack, client_id),
    ).fetchone()
    if row is None:
        return None
    outputs = json.loads(row[3]) if isinstance(row[3], str | bytes) else row[3]  # jsonb: decoded
    app_name = outputs.get("appName", "") if isinstance(outputs, dict) else ""
    return str(row[0]), str(row[1]), row[2], app_name


def check_serial(stack: str, info: StackInfo | None, expected: int) -> None:
    serial = info.serial if info is not None else None
    if serial != expected:
        found = "does not exist" if serial is None else f"is at serial {serial}"
        raise StateConflict(
            f"the state of stack {stack!r} changed while this plan was made: it {found}, "
            f"the plan expected serial {expected}; plan again"
        )


def upsert_connection(p: str) -> str:
    return (
        f"INSERT INTO connections ({_CONN_COLS}) VALUES ({_marks(p, 12)}) "
        "ON CONFLICT (stack, kind, name) DO UPDATE SET spec = excluded.spec, "
        "secret_versions = excluded.secret_versions, outputs = excluded.outputs, "
        "labels = excluded.labels, protect = excluded.protect, "
        "updated_at = excluded.updated_at, client_id = excluded.client_id, "
        "secret_sha256 = excluded.secret_sha256"
    )


def apply_changes(
    db: Db, p: str, stack: str, rows: Sequence[ConnRow], deletes: Sequence[tuple[str, str]]
) -> None:
    """Deletes, then upserts, then drop tokens no connection vouches for any more."""
    if deletes:
        keys = [(stack, kind, name) for kind, name in deletes]
        where = f"WHERE stack = {p} AND kind = {p} AND name = {p}"
        db.executemany(f"DELETE FROM connections {where}", keys)
        db.executemany(f"DELETE FROM last_tests {where}", keys)
    if rows:
        db.executemany(upsert_connection(p), rows)
    db.execute(
        f"DELETE FROM tokens WHERE stack = {p} AND NOT EXISTS (SELECT 1 FROM connections c "
        "WHERE c.stack = tokens.stack AND c.kind = 'incoming' "
        "AND c.client_id = tokens.client_id AND c.secret_sha256 = tokens.secret_sha256)",
        (stack,),
    )


def test_rows(stack: str, results: Sequence[CheckResult]) -> list[tuple[Any, ...]]:
    now = now_iso()
    return [
        (
            stack,
            r.kind,
            r.name,
            r.status,
            r.reason,
            r.message,
            int(r.duration_ms),
            r.checked_at or now,
            stack,
            r.kind,
            r.name,
        )
        for r in results
    ]


def upsert_test(p: str) -> str:
    return (
        "INSERT INTO last_tests (stack, kind, name, status, reason, message, duration_ms, "
        f"checked_at) SELECT {_marks(p, 8)} WHERE EXISTS (SELECT 1 FROM connections "
        f"WHERE stack = {p} AND kind = {p} AND name = {p}) "
        "ON CONFLICT (stack, kind, name) DO UPDATE SET status = excluded.status, "
        "reason = excluded.reason, message = excluded.message, "
        "duration_ms = excluded.duration_ms, checked_at = excluded.checked_at"
    )


def select_history(
    db: Db, p: str, stack: str, *, limit: int | None, oldest_first: bool = False
) -> list[HistoryEntry]:
    sql = (
        "SELECT serial, applied_at, actor, git_commit, summary, changes FROM history "
        f"WHERE stack = {p} ORDER BY serial {'ASC' if oldest_first else 'DESC'}"
    )
    params: list[Any] = [stack]
    if limit is not None:
        sql += f" LIMIT {p}"
        params.append(max(0, int(limit)))
    return [decode_history(r) for r in db.execute(sql, params).fetchall()]


def lock_info(stack: str, row: Sequence[Any]) -> LockInfo:
    """From ``lock_id, holder, host, pid, operation, since, ...``."""
    return LockInfo(
        lock_id=row[0],
        stack=stack,
        holder=row[1],
        host=row[2],
        pid=int(row[3]),
        operation=row[4],
        since=row[5],
    )


def no_such_lock(stack: str, lock_id: str, current: str | None) -> StateError:
    if current is None:
        return StateError(f"stack {stack!r} is not locked (no lock {lock_id})")
    return StateError(
        f"stack {stack!r} is not locked with ID {lock_id}; its current lock ID is {current}"
    )


def insert_token(p: str) -> str:
    return (
        "INSERT INTO tokens (stack, token_sha256, client_id, connection, secret_sha256, "
        f"expires_at) VALUES ({_marks(p, 6)}) ON CONFLICT (stack, token_sha256) DO NOTHING"
    )


def token_row(stack: str, token: TokenRecord) -> tuple[Any, ...]:
    return (
        stack,
        token.token_sha256,
        token.client_id,
        token.connection,
        token.secret_sha256,
        float(token.expires_at),
    )


def insert_disclosure(p: str) -> str:
    return (
        "INSERT INTO disclosures (stack, connection, client_id, document_id, released_at, "
        f"remote_addr) VALUES ({_marks(p, 6)})"
    )


def disclosure_row(stack: str, d: Disclosure) -> tuple[str, ...]:
    return (stack, d.connection, d.client_id, d.document_id, d.released_at, d.remote_addr)


def select_disclosures(db: Db, p: str, stack: str, since: str | None) -> list[Disclosure]:
    sql = (
        "SELECT connection, client_id, document_id, released_at, remote_addr "
        f"FROM disclosures WHERE stack = {p}"
    )
    params: list[Any] = [stack]
    if since is not None:
        sql += f" AND released_at >= {p}"
        params.append(since)
    rows = db.execute(sql + " ORDER BY released_at, id", params).fetchall()
    return [Disclosure(r[0], r[1], r[2], r[3], r[4]) for r in rows]


# -- migration between stores -------------------------------------------------


def export(db: Db, p: str, stack: str, *, where: str) -> StackDump:
    info = read_stack(db, stack, p)
    if info is None:
        raise StateError(f"stack {stack!r} does not exist in {where}")
    return StackDump(
        stack=info,
        connections=select_connections(db, p, stack),
        history=select_history(db, p, stack, limit=None, oldest_first=True),
        disclosures=select_disclosures(db, p, stack, None),
    )


def _count(db: Db, p: str, table: str, stack: str) -> int:
    row = db.execute(f"SELECT count(*) FROM {table} WHERE stack = {p}", (stack,)).fetchone()
    return int(row[0])


def import_(db: Db, p: str, dump: StackDump, *, where: str, for_update: bool = False) -> None:
    """Write ``dump`` as the stack; refuse if that stack already holds anything."""
    stack = dump.stack.stack
    info = read_stack(db, stack, p, for_update=for_update)
    if info is not None:
        held = {t: _count(db, p, t, stack) for t in ("connections", "history", "disclosures")}
        if info.serial or any(held.values()):
            raise StateError(
                f"stack {stack!r} already exists in {where} and is not empty (serial "
                f"{info.serial}, {held['connections']} connections, {held['history']} applies); "
                "refusing to overwrite it"
            )
        db.execute(f"DELETE FROM last_tests WHERE stack = {p}", (stack,))
        db.execute(f"DELETE FROM stacks WHERE stack = {p}", (stack,))
    db.execute(
        f"INSERT INTO stacks (stack, lineage, serial, created_at) VALUES ({_marks(p, 4)})",
        (stack, dump.stack.lineage, dump.stack.serial, dump.stack.created_at or now_iso()),
    )
    now = now_iso()
    rows = [encode_connection(stack, r, now=now, keep_times=True) for r in dump.connections]
    if rows:
        db.executemany(upsert_connection(p), rows)
    tests = [r.last_test for r in dump.connections if r.last_test is not None]
    if tests:
        db.executemany(upsert_test(p), test_rows(stack, tests))
    if dump.history:
        db.executemany(
            "INSERT INTO history (stack, serial, applied_at, actor, git_commit, summary, changes) "
            f"VALUES ({_marks(p, 7)})",
            [
                (
                    stack,
                    h.serial,
                    h.applied_at,
                    h.actor,
                    h.git_commit,
                    encode_json(dict(h.summary), what="a history summary"),
                    encode_json([list(c) for c in h.changes], what="history changes"),
                )
                for h in dump.history
            ],
        )
    if dump.disclosures:
        db.executemany(insert_disclosure(p), [disclosure_row(stack, d) for d in dump.disclosures])
