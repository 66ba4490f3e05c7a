"""The shared registry: PostgreSQL, for many CI runners and ``serve`` replicas.

A stack lock is a *session-level* advisory lock, keyed by a hash of the
stack name (``erelease:<stack>``, so unrelated stacks never block each
other), held on a connection of its own that never returns to a pool. When
the holding process dies — kill -9, a lost CI runner — the server ends the
session and the lock with it; nobody has to run ``state unlock``. Next to it
a lock *row* names the holder, so a contender can say who and since when;
whoever wins the advisory lock clears a row left behind by a dead holder.
``state unlock`` ends the holder's server session (its advisory lock goes
with it) and removes the row: a stuck or cut-off runner whose session the
server still believes alive is the one case a lock outlives its holder.

Commits run on the lock's own connection when this store holds the lock, so
a lock lost with its connection can never be followed by a write; the serial
check inside the transaction is the second guard. Transactions the server
aborts (serialization failure, deadlock) are retried; so is anything that
failed before ``COMMIT`` was sent. Poolers in transaction mode (PgBouncer)
break session-level advisory locks: point erelease at the server or at a
session-mode pool.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import psycopg

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
from erelease.state import _pg_lock, _sql
from erelease.state._common import (
    Backoff,
    Holder,
    encode_connection,
    locked_error,
    mask_url,
    new_lineage,
    now_iso,
    summary_json,
)
from erelease.state._pg_conn import Pool, connect, connection_lost, conninfo, query_error
from erelease.state._pg_run import Cursor, Held, run
from erelease.state._pg_schema import migrate
from erelease.state.base import Lock, StackDump, StateStore

__all__ = ["PostgresStore"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_P = "%s"
_LOOKUP = """SELECT t.client_id, t.connection, t.secret_sha256, t.expires_at
    FROM tokens t JOIN connections c ON c.stack = t.stack AND c.client_id = t.client_id
    WHERE t.stack = %s AND t.token_sha256 = %s AND t.expires_at > %s
      AND c.kind = 'incoming' AND c.secret_sha256 = t.secret_sha256"""

#: one statement, one round trip; the setting is local to its implicit transaction
_STORE_TOKEN = """INSERT INTO tokens
        (stack, token_sha256, client_id, connection, secret_sha256, expires_at)
    SELECT %s, %s, %s, %s, %s, %s
    FROM (SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous_commit
    ON CONFLICT (stack, token_sha256) DO NOTHING"""


#: how long a contender waits for a new holder to record who it is
_SETTLE_SECONDS = 3.0


class PostgresStore(StateStore):
    """A registry in schema ``erelease`` of a PostgreSQL database (``postgresql://…``)."""

    def __init__(self, url: str) -> None:
        self.url = mask_url(url)
        self._dsn = conninfo(url)
        self._pool = Pool(lambda: connect(self._dsn, self.url))
        self._guard = threading.Lock()
        self._held: dict[str, Held] = {}
        self._holder = Holder.current()
        self._pid = os.getpid()
        conn = self._pool.get()
        try:
            migrate(conn, where=self.url)
        except psycopg.Error as exc:
            lost = connection_lost(exc, conn)
            conn.close()
            raise query_error(exc, self.url, "prepare the erelease schema", lost=lost) from exc
        except BaseException:
            conn.close()
            raise
        self._pool.put(conn)

    # -- plumbing ------------------------------------------------------------
    def _run(
        self,
        doing: str,
        body: Callable[[Cursor], T],
        *,
        idempotent: bool = True,
        transaction: bool = True,
        snapshot: bool = False,
        held: Held | None = None,
    ) -> T:
        return run(
            self._pool,
            self.url,
            doing,
            body,
            idempotent=idempotent,
            transaction=transaction,
            snapshot=snapshot,
            held=held,
        )

    def _after_fork(self) -> None:
        """In a forked child, forget the parent's locks: theirs to use and release."""
        if self._pid != os.getpid():
            self._pool.inherited.extend(h.conn for h in self._held.values())
            self._held, self._guard, self._pid = {}, threading.Lock(), os.getpid()
            self._holder = Holder.current()

    def _held_for(self, stack: str) -> Held | None:
        self._after_fork()
        with self._guard:
            return next((h for h in self._held.values() if h.stack == stack), None)

    # -- stack ---------------------------------------------------------------
    def read_stack(self, *, stack: str) -> StackInfo | None:
        return self._run("read", lambda cur: _sql.read_stack(cur, stack, _P), transaction=False)

    def init_stack(self, *, stack: str) -> StackInfo:
        def body(cur: Cursor) -> StackInfo | None:
            cur.execute(
                "INSERT INTO stacks (stack, lineage, serial, created_at) VALUES (%s, %s, 0, %s) "
                "ON CONFLICT (stack) DO NOTHING",
                (stack, new_lineage(), now_iso()),
            )
            return _sql.read_stack(cur, stack, _P)

        info = self._run("create the stack", body)
        assert info is not None
        return info

    def list_stacks(self) -> list[StackInfo]:
        return self._run("read", _sql.list_stacks, transaction=False)

    # -- connections ---------------------------------------------------------
    def list_connections(self, *, stack: str) -> list[ConnectionRecord]:
        return self._run(
            "read", lambda cur: _sql.select_connections(cur, _P, stack), transaction=False
        )

    def get_connection(self, *, stack: str, kind: str, name: str) -> ConnectionRecord | None:
        found = self._run(
            "read",
            lambda cur: _sql.select_connections(cur, _P, stack, kind=kind, name=name),
            transaction=False,
        )
        return found[0] if found else None

    def find_client(self, *, stack: str, client_id: str) -> ConnectionRecord | None:
        found = self._run(
            "read",
            lambda cur: _sql.select_connections(cur, _P, stack, client_id=client_id),
            transaction=False,
        )
        return found[0] if found else None

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

        def body(cur: Cursor) -> StackInfo:
            info = _sql.read_stack(cur, stack, _P, for_update=True)
            if info is None and expected_serial == 0:
                cur.execute(
                    "INSERT INTO stacks (stack, lineage, serial, created_at) "
                    "VALUES (%s, %s, 0, %s) ON CONFLICT (stack) DO NOTHING",
                    (stack, new_lineage(), now),
                )
                info = _sql.read_stack(cur, stack, _P, for_update=True)
            _sql.check_serial(stack, info, expected_serial)
            assert info is not None
            serial = info.serial + 1
            _sql.apply_changes(cur, _P, stack, rows, deletes)
            cur.execute(
                "INSERT INTO history (stack, serial, applied_at, actor, git_commit, summary, "
                "changes) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (stack, serial, now, actor, git_commit, summary_text, changes_text),
            )
            cur.execute("UPDATE stacks SET serial = %s WHERE stack = %s", (serial, stack))
            return StackInfo(stack, info.lineage, serial, info.created_at)

        return self._run("commit", body, idempotent=False, held=self._held_for(stack))

    def record_test_results(self, *, stack: str, results: Sequence[CheckResult]) -> None:
        rows = _sql.test_rows(stack, results)
        if rows:
            self._run(
                "record test results", lambda cur: cur.executemany(_sql.upsert_test(_P), rows)
            )

    def history(self, *, stack: str, limit: int | None = None) -> list[HistoryEntry]:
        return self._run(
            "read", lambda cur: _sql.select_history(cur, _P, stack, limit=limit), transaction=False
        )

    # -- locks ---------------------------------------------------------------
    def acquire_lock(self, *, stack: str, operation: str, timeout: float = 0.0) -> Lock:
        self._after_fork()
        info = self._holder.new_lock(stack=stack, operation=operation)
        conn = connect(self._dsn, self.url)  # dedicated: never pooled
        backoff = Backoff(timeout)
        # A holder writes its lock row a moment after taking the advisory lock; a
        # contender arriving in between (or as the holder lets go) waits briefly for
        # the row, whatever the timeout, so that it can name who holds the lock.
        settle_until = time.monotonic() + _SETTLE_SECONDS
        try:
            while not _pg_lock.try_lock(conn, info):
                with conn.cursor() as cur:
                    held = _pg_lock.holder(cur, stack)
                unnamed = held is None or held.lock_id == _pg_lock.UNRECORDED
                if unnamed and time.monotonic() < settle_until:
                    time.sleep(0.02)
                    continue
                if not backoff.wait():
                    raise locked_error(
                        stack,
                        held or _pg_lock.nobody(stack),
                        hint=None
                        if not unnamed
                        else "wait, or retry with --lock-timeout; the lock ends with the "
                        "holder's database session, even if the holder crashes",
                    )
        except psycopg.Error as exc:
            lost = connection_lost(exc, conn)
            conn.close()
            raise query_error(exc, self.url, "take the stack lock", lost=lost) from exc
        except BaseException:
            conn.close()
            raise
        with self._guard:
            self._held[info.lock_id] = Held(conn, stack)
        return Lock(self, info)

    def release_lock(self, *, stack: str, lock_id: str) -> None:
        self._after_fork()
        with self._guard:
            held = self._held.pop(lock_id, None)
        if held is None:  # not ours (any more): just make sure its row is gone
            self._run(
                "release the stack lock",
                lambda cur: cur.execute(
                    "DELETE FROM locks WHERE stack = %s AND lock_id = %s", (stack, lock_id)
                ),
            )
            return
        try:
            with held.mutex:
                _pg_lock.unlock(held.conn, stack, lock_id)
        except psycopg.Error:
            # the session is gone, and its advisory lock with it; the next
            # acquirer clears the row it left
            log.warning("the connection holding lock %s was already lost", lock_id)
        finally:
            held.conn.close()

    def current_lock(self, *, stack: str) -> LockInfo | None:
        return self._run("read the lock", lambda cur: _pg_lock.holder(cur, stack))

    def force_unlock(self, *, stack: str, lock_id: str) -> LockInfo:
        """Break the lock ``lock_id``: end the server session holding it (which
        releases the advisory lock and leaves its process unable to write
        anything more), then remove the row."""

        def body(cur: Cursor) -> LockInfo:
            row = _pg_lock.row(cur, stack, for_update=True)
            if row is None or row[0] != lock_id:
                raise _sql.no_such_lock(stack, lock_id, str(row[0]) if row else None)
            try:
                _pg_lock.end_holder(cur, stack, int(str(row[6])))
            except psycopg.errors.InsufficientPrivilege as exc:
                raise StateError(
                    f"PostgreSQL at {self.url} did not let this user end the session holding "
                    f"lock {lock_id} (backend pid {row[6]}): permission denied; nothing changed",
                    hint="run it as the user that holds the lock, or as a member of "
                    "pg_signal_backend",
                ) from exc
            cur.execute("DELETE FROM locks WHERE stack = %s AND lock_id = %s", (stack, lock_id))
            return _sql.lock_info(stack, row)

        return self._run("break the stack lock", body)

    # -- serve: tokens and disclosures ---------------------------------------
    def store_token(self, *, stack: str, token: TokenRecord) -> None:
        """Committed without waiting for the WAL flush: a token lost to a server crash
        costs its client one new token request, and ``serve`` issues many a second."""
        row = _sql.token_row(stack, token)
        self._run("store a token", lambda cur: cur.execute(_STORE_TOKEN, row), transaction=False)

    def lookup_token(self, *, stack: str, token_sha256: str, now: float) -> TokenRecord | None:
        found = self._run(
            "read a token",
            lambda cur: cur.execute(_LOOKUP, (stack, token_sha256, now)).fetchone(),
            transaction=False,
        )
        if found is None:
            return None
        return TokenRecord(token_sha256, found[0], found[1], found[2], float(found[3]))

    def purge_tokens(self, *, stack: str, now: float) -> int:
        def body(cur: Cursor) -> int:
            cur.execute("DELETE FROM tokens WHERE stack = %s AND expires_at <= %s", (stack, now))
            return int(cur.rowcount)

        return self._run("purge tokens", body, transaction=False)

    def record_disclosure(self, *, stack: str, disclosure: Disclosure) -> None:
        row = _sql.disclosure_row(stack, disclosure)
        self._run(
            "record a disclosure",
            lambda cur: cur.execute(_sql.insert_disclosure(_P), row),
            idempotent=False,
            transaction=False,
        )

    def list_disclosures(self, *, stack: str, since: str | None = None) -> list[Disclosure]:
        return self._run(
            "read", lambda cur: _sql.select_disclosures(cur, _P, stack, since), transaction=False
        )

    # -- migration -----------------------------------------------------------
    def export_stack(self, *, stack: str) -> StackDump:
        return self._run(
            "export the stack",
            lambda cur: _sql.export(cur, _P, stack, where=self.url),
            snapshot=True,
        )

    def import_stack(self, *, dump: StackDump) -> None:
        self._run(
            "import the stack",
            lambda cur: _sql.import_(cur, _P, dump, where=self.url, for_update=True),
            idempotent=False,
        )

    def close(self) -> None:
        self._after_fork()
        with self._guard:
            held = list(self._held.items())
        for lock_id, lock in held:
            with contextlib.suppress(ErelaseError):
                self.release_lock(stack=lock.stack, lock_id=lock_id)
        self._pool.close()
