"""Stack locks on PostgreSQL: a session advisory lock plus a row naming its holder.

The advisory lock is the truth — the server drops it when the holding
session ends, however the process died. The row is the explanation: who,
where, doing what, since when. The two can disagree (a row left by a killed
holder; a session holding the lock before its row is written, or after
``state unlock`` removed the row), so a contender always asks the server who
holds the advisory lock and uses the row only if it belongs to that session.
"""

from __future__ import annotations

import time

from erelease.model import LockInfo
from erelease.state import _sql
from erelease.state._pg_conn import PgConn
from erelease.state._pg_run import Cursor

__all__ = ["end_holder", "holder", "nobody", "try_lock", "unlock"]

_SELECT_ROW = (
    "SELECT lock_id, holder, host, pid, operation, since, backend_pid FROM locks WHERE stack = %s"
)
_INSERT_ROW = (
    "INSERT INTO locks (stack, lock_id, holder, host, pid, operation, since, backend_pid) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, pg_backend_pid())"
)
#: the server session holding the stack's advisory lock in this database, if any
#: (a bigint key shows in pg_locks as classid = high half, objid = low half, objsubid 1)
_HOLDER_PID = """WITH k AS (SELECT hashtextextended(%s, 0) AS key)
    SELECT l.pid FROM pg_locks l, k
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = ((k.key >> 32) & 4294967295)::oid
      AND l.objid = (k.key & 4294967295)::oid
    LIMIT 1"""
_ACTIVITY = """SELECT usename, coalesce(host(client_addr), 'a local socket'),
    application_name, backend_start FROM pg_stat_activity WHERE pid = %s"""


#: the lock ID shown for an advisory lock whose holder left no lock row
UNRECORDED = "(none recorded)"


def key(stack: str) -> str:
    """The text hashed into the stack's advisory-lock key: one key per stack."""
    return f"erelease:{stack}"


def try_lock(conn: PgConn, info: LockInfo) -> bool:
    """Take the advisory lock on ``conn`` (autocommit) and write its row; ``False`` if held."""
    row = conn.execute(
        "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key(info.stack),)
    ).fetchone()
    if row is None or not row[0]:
        return False
    with conn.transaction():
        # any row still here was left by a holder whose session has ended
        conn.execute("DELETE FROM locks WHERE stack = %s", (info.stack,))
        conn.execute(
            _INSERT_ROW,
            (
                info.stack,
                info.lock_id,
                info.holder,
                info.host,
                info.pid,
                info.operation,
                info.since,
            ),
        )
    return True


def unlock(conn: PgConn, stack: str, lock_id: str) -> None:
    with conn.transaction():
        conn.execute("DELETE FROM locks WHERE stack = %s AND lock_id = %s", (stack, lock_id))
    conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key(stack),))


def _holder_pid(cur: Cursor, stack: str) -> int | None:
    found = cur.execute(_HOLDER_PID, (key(stack),)).fetchone()
    return int(found[0]) if found is not None else None


def end_holder(cur: Cursor, stack: str, backend_pid: int, *, wait: float = 10.0) -> bool:
    """End the server session ``backend_pid`` if it still holds the stack's advisory
    lock, and wait until the server has let the lock go; ``False`` if it did not hold it.

    This is what ``state unlock`` does on PostgreSQL: the lock lives exactly as
    long as that session, so deleting the row alone would break nothing. It is
    safe because a holder commits on the lock's own connection: once that
    session is gone the holder can write nothing more, and a commit in flight
    is rolled back whole.
    """
    if _holder_pid(cur, stack) != backend_pid:
        return False  # ended already (a reused backend pid is never signalled)
    cur.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))
    deadline = time.monotonic() + wait
    while _holder_pid(cur, stack) == backend_pid and time.monotonic() < deadline:
        time.sleep(0.02)
    return True


def row(cur: Cursor, stack: str, *, for_update: bool = False) -> tuple[object, ...] | None:
    found = cur.execute(_SELECT_ROW + (" FOR UPDATE" if for_update else ""), (stack,)).fetchone()
    return tuple(found) if found is not None else None


def holder(cur: Cursor, stack: str) -> LockInfo | None:
    """Who holds the stack's advisory lock now; ``None`` if nobody does."""
    pid = _holder_pid(cur, stack)
    if pid is None:
        return None
    record = row(cur, stack)
    if record is not None and record[6] == pid:
        return _sql.lock_info(stack, record)
    act = cur.execute(_ACTIVITY, (pid,)).fetchone() or (None, None, None, None)
    return LockInfo(
        lock_id=UNRECORDED,
        stack=stack,
        holder=act[0] or "an unknown user",
        host=act[1] or "an unknown host",
        pid=pid,
        operation=f"{act[2] or 'a session'} (server backend pid {pid}, no lock record)",
        since=act[3].isoformat() if act[3] is not None else "an unknown time",
    )


def nobody(stack: str) -> LockInfo:
    """Stands in for a holder that let go between our two looks."""
    return LockInfo(
        lock_id=UNRECORDED,
        stack=stack,
        holder="another session",
        host="an unknown host",
        pid=0,
        operation="an operation",
        since="moments ago",
    )
