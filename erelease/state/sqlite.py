"""The embedded registry: one SQLite file per config directory.

One admin, one file, nothing to run. The file is created atomically with
mode 0600 (a temporary file is built and hard-linked into place, so no one
ever opens a half-initialised registry), runs in WAL mode so ``serve`` can
read while an apply writes, and every write is one ``BEGIN IMMEDIATE``
transaction. ``serve`` calls the token methods from many threads, so each
thread gets its own connection. The stack lock is a row naming its holder;
a holder on this host whose process is gone (or whose pid was reused) is
stale and taken over.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from erelease.errors import ErelaseError, StateError
from erelease.model import (
    CheckResult,
    ConnectionRecord,
    Disclosure,
    HistoryEntry,
    LockInfo,
    StackInfo,
    TokenRecord,
)
from erelease.state import _sql
from erelease.state._common import (
    Backoff,
    Holder,
    encode_connection,
    locked_error,
    new_lineage,
    now_iso,
    pid_alive,
    process_start,
    summary_json,
)
from erelease.state._sqlite_schema import create_file, migrate
from erelease.state.base import Lock, StackDump, StateStore

__all__ = ["SQLiteStore"]

log = logging.getLogger(__name__)

_BUSY_MS = 10_000

_LOOKUP = """SELECT t.client_id, t.connection, t.secret_sha256, t.expires_at
    FROM tokens t JOIN connections c
      ON c.stack = t.stack AND c.client_id = t.client_id AND c.client_id IS NOT NULL
    WHERE t.stack = ? AND t.token_sha256 = ? AND t.expires_at > ?
      AND c.kind = 'incoming' AND c.secret_sha256 = t.secret_sha256"""


_LOCK_ROW = (
    "SELECT lock_id, holder, host, pid, operation, since, proc_start FROM locks WHERE stack = ?"
)


def _reason(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return "it is busy (another erelease is writing it); try again"
    if "not a database" in text or "malformed" in text:
        return "it is not a valid SQLite registry (damaged, or some other file)"
    if "unable to open" in text:
        return "it cannot be opened (does the directory exist, and may erelease write it?)"
    if "readonly" in text:
        return "it is read-only for this user"
    if "disk is full" in text or "disk I/O" in text:
        return "it could not be written (is the disk full, or a file size limit reached?)"
    return text


class SQLiteStore(StateStore):
    """A registry in one SQLite file (``sqlite:///path``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).absolute()
        self.url = f"sqlite:///{self.path}"
        self._closed = False
        self._inherited: list[sqlite3.Connection] = []
        self._fresh_process_state()
        if self.path.exists() and not self.path.is_file():
            what = "a directory" if self.path.is_dir() else "not a regular file"
            raise StateError(f"the state file {self.path} is {what}; name a file for it")
        try:
            if not self.path.exists():
                create_file(self.path)
            migrate(self._conn(), where=str(self.path))
        except sqlite3.Error as exc:
            raise self._error("open", exc) from exc
        except OSError as exc:
            raise StateError(
                f"cannot create the state file {self.path}: {exc.strerror or exc}"
            ) from exc

    # -- plumbing ------------------------------------------------------------
    def _fresh_process_state(self) -> None:
        """Per-process state; a forked child (a pre-fork server) starts its own."""
        self._pid = os.getpid()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        # threads of this process take turns to write: SQLite's own busy handler
        # sleeps for milliseconds at a time, which would throttle serve's threads
        self._writer = threading.Lock()
        self._held: dict[str, str] = {}  # lock_id -> stack: the parent's are not ours
        self._holder = Holder.current()
        self._autocheckpoint: int | None = None  # None: SQLite's default

    def _error(self, doing: str, exc: sqlite3.Error) -> StateError:
        return StateError(f"cannot {doing} the state file {self.path}: {_reason(exc)}")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._pid == os.getpid():
            return conn
        if self._pid != os.getpid():
            # a connection must not cross fork(): keep the parent's unused and unclosed
            self._inherited.extend(self._conns)
            self._fresh_process_state()
        if self._closed:
            raise StateError(f"the state store {self.path} is closed")
        conn = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=_BUSY_MS / 1000
        )
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if self._autocheckpoint is not None:
            conn.execute(f"PRAGMA wal_autocheckpoint = {self._autocheckpoint:d}")
        self._local.conn = conn
        with self._guard:
            self._conns.append(conn)
        return conn

    @contextlib.contextmanager
    def _write(self, doing: str, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction; rolled back on any exception."""
        conn = self._conn()
        try:
            with self._writer:
                if durable:
                    conn.execute("PRAGMA synchronous = FULL")
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                finally:
                    if durable:
                        conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise self._error(doing, exc) from exc

    @contextlib.contextmanager
    def _read(self, doing: str, *, snapshot: bool = False) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        try:
            if snapshot:
                conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if snapshot and conn.in_transaction:
                    conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._error(doing, exc) from exc

    # -- stack ---------------------------------------------------------------
    def read_stack(self, *, stack: str) -> StackInfo | None:
        with self._read("read") as conn:
            return _sql.read_stack(conn, stack, "?")

    def init_stack(self, *, stack: str) -> StackInfo:
        with self._write("write") as conn:
            conn.execute(
                "INSERT INTO stacks (stack, lineage, serial, created_at) VALUES (?, ?, 0, ?) "
                "ON CONFLICT (stack) DO NOTHING",
                (stack, new_lineage(), now_iso()),
            )
            info = _sql.read_stack(conn, stack, "?")
        assert info is not None
        return info

    def list_stacks(self) -> list[StackInfo]:
        with self._read("read") as conn:
            return _sql.list_stacks(conn)

    # -- connections ---------------------------------------------------------
    def list_connections(self, *, stack: str) -> list[ConnectionRecord]:
        with self._read("read") as conn:
            return _sql.select_connections(conn, "?", stack)

    def get_connection(self, *, stack: str, kind: str, name: str) -> ConnectionRecord | None:
        with self._read("read") as conn:
            found = _sql.select_connections(conn, "?", stack, kind=kind, name=name)
        return found[0] if found else None

    def find_client(self, *, stack: str, client_id: str) -> ConnectionRecord | None:
        with self._read("read") as conn:
            found = _sql.select_connections(conn, "?", stack, client_id=client_id)
        return found[0] if found else None

    def find_client_auth(self, *, stack: str, client_id: str) -> tuple[Any, ...] | None:
        """What :meth:`find_client` tells the Token URL, without decoding the record."""
        with self._read("read") as conn:
            return _sql.find_client_auth(conn, "?", stack, client_id)

    def set_wal_autocheckpoint(self, pages: int) -> None:
        """Commits of this process checkpoint only past ``pages`` WAL pages (0: never);
        ``serve`` checkpoints on a thread instead, so that no request stalls on it."""
        self._conn()  # notices a fork first: a forked child starts with SQLite's default
        self._autocheckpoint = max(0, int(pages))
        with self._guard:
            for conn in self._conns:
                conn.execute(f"PRAGMA wal_autocheckpoint = {self._autocheckpoint:d}")

    def commit(
        self,
        *,
        stack: str,
        expected_serial: int,
        upserts: Sequence[ConnectionRecord],
        deletes: Sequence[tuple[str, str]],
        actor: str,
        git_commit: str | None,
        summary: dict[str, int],
        changes: Sequence[tuple[str, str]],
    ) -> StackInfo:
        now = now_iso()
        rows = [encode_connection(stack, record, now=now) for record in upserts]
        summary_text, changes_text = summary_json(summary, changes)
        with self._write("commit to", durable=True) as conn:
            info = _sql.read_stack(conn, stack, "?")
            if info is None and expected_serial == 0:
                info = StackInfo(stack=stack, lineage=new_lineage(), serial=0, created_at=now)
                conn.execute(
                    "INSERT INTO stacks (stack, lineage, serial, created_at) VALUES (?, ?, 0, ?)",
                    (stack, info.lineage, now),
                )
            _sql.check_serial(stack, info, expected_serial)
            assert info is not None
            serial = info.serial + 1
            _sql.apply_changes(conn, "?", stack, rows, deletes)
            conn.execute(
                "INSERT INTO history (stack, serial, applied_at, actor, git_commit, summary, "
                "changes) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (stack, serial, now, actor, git_commit, summary_text, changes_text),
            )
            conn.execute("UPDATE stacks SET serial = ? WHERE stack = ?", (serial, stack))
        return StackInfo(stack, info.lineage, serial, info.created_at)

    def record_test_results(self, *, stack: str, results: Sequence[CheckResult]) -> None:
        rows = _sql.test_rows(stack, results)
        with self._write("record test results in") as conn:
            conn.executemany(_sql.upsert_test("?"), rows)

    def history(self, *, stack: str, limit: int | None = None) -> list[HistoryEntry]:
        with self._read("read") as conn:
            return _sql.select_history(conn, "?", stack, limit=limit)

    # -- locks ---------------------------------------------------------------
    def _stale(self, row: Sequence[Any]) -> bool:
        host, pid, start = row[2], int(row[3]), row[6]
        return bool(host == self._holder.host and not pid_alive(pid, start))

    def acquire_lock(self, *, stack: str, operation: str, timeout: float = 0.0) -> Lock:
        self._conn()  # notices a fork, and with it a new holder pid
        info = self._holder.new_lock(stack=stack, operation=operation)
        backoff = Backoff(timeout)
        while True:
            with self._write("lock") as conn:
                row = conn.execute(_LOCK_ROW, (stack,)).fetchone()
                held: LockInfo | None = None
                if row is not None and self._stale(row):
                    log.warning("taking over the stale lock %s of stack %s", row[0], stack)
                    conn.execute("DELETE FROM locks WHERE stack = ?", (stack,))
                elif row is not None:
                    held = _sql.lock_info(stack, row)
                if held is None:
                    conn.execute(
                        "INSERT INTO locks (stack, lock_id, holder, host, pid, operation, since, "
                        "proc_start) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            stack,
                            info.lock_id,
                            info.holder,
                            info.host,
                            info.pid,
                            operation,
                            info.since,
                            process_start(info.pid),
                        ),
                    )
            if held is None:
                with self._guard:
                    self._held[info.lock_id] = stack
                return Lock(self, info)
            if not backoff.wait():
                raise locked_error(stack, held)

    def release_lock(self, *, stack: str, lock_id: str) -> None:
        with self._guard:
            self._held.pop(lock_id, None)
        with self._write("unlock") as conn:
            conn.execute("DELETE FROM locks WHERE stack = ? AND lock_id = ?", (stack, lock_id))

    def current_lock(self, *, stack: str) -> LockInfo | None:
        with self._read("read") as conn:
            row = conn.execute(_LOCK_ROW, (stack,)).fetchone()
        if row is None or self._stale(row):
            return None
        return _sql.lock_info(stack, row)

    def force_unlock(self, *, stack: str, lock_id: str) -> LockInfo:
        with self._write("unlock") as conn:
            row = conn.execute(_LOCK_ROW, (stack,)).fetchone()
            if row is None or row[0] != lock_id:
                raise _sql.no_such_lock(stack, lock_id, row[0] if row else None)
            conn.execute("DELETE FROM locks WHERE stack = ? AND lock_id = ?", (stack, lock_id))
        with self._guard:
            self._held.pop(lock_id, None)
        return _sql.lock_info(stack, row)

    # -- serve: tokens and disclosures ---------------------------------------
    def store_token(self, *, stack: str, token: TokenRecord) -> None:
        self.store_tokens(stack=stack, tokens=(token,))

    def store_tokens(self, *, stack: str, tokens: Sequence[TokenRecord]) -> None:
        """Remember tokens in one commit: ``serve`` stores those it issues together so."""
        rows = [_sql.token_row(stack, token) for token in tokens]
        if len(rows) != 1:
            with self._write("store tokens in") as conn:
                conn.executemany(_sql.insert_token("?"), rows)
            return
        try:
            conn = self._conn()
            with self._writer:
                conn.execute(_sql.insert_token("?"), rows[0])
        except sqlite3.Error as exc:
            raise self._error("store a token in", exc) from exc

    def lookup_token(self, *, stack: str, token_sha256: str, now: float) -> TokenRecord | None:
        try:
            row = self._conn().execute(_LOOKUP, (stack, token_sha256, now)).fetchone()
        except sqlite3.Error as exc:
            raise self._error("read a token from", exc) from exc
        if row is None:
            return None
        return TokenRecord(token_sha256, row[0], row[1], row[2], float(row[3]))

    def purge_tokens(self, *, stack: str, now: float) -> int:
        with self._write("purge tokens from") as conn:
            cur = conn.execute(
                "DELETE FROM tokens WHERE stack = ? AND expires_at <= ?", (stack, now)
            )
            return int(cur.rowcount)

    def record_disclosure(self, *, stack: str, disclosure: Disclosure) -> None:
        with self._write("record a disclosure in") as conn:
            conn.execute(_sql.insert_disclosure("?"), _sql.disclosure_row(stack, disclosure))

    def list_disclosures(self, *, stack: str, since: str | None = None) -> list[Disclosure]:
        with self._read("read") as conn:
            return _sql.select_disclosures(conn, "?", stack, since)

    # -- migration -----------------------------------------------------------
    def export_stack(self, *, stack: str) -> StackDump:
        with self._read("read", snapshot=True) as conn:
            return _sql.export(conn, "?", stack, where=self.url)

    def import_stack(self, *, dump: StackDump) -> None:
        with self._write("import into") as conn:
            _sql.import_(conn, "?", dump, where=self.url)

    def close(self) -> None:
        if self._pid != os.getpid():
            self._inherited.extend(self._conns)
            self._fresh_process_state()
        with self._guard:
            held = list(self._held.items())
        for lock_id, stack in held:
            with contextlib.suppress(ErelaseError):
                self.release_lock(stack=stack, lock_id=lock_id)
        with self._guard:
            self._closed = True
            conns, self._conns = self._conns, []
        self._local = threading.local()
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
