"""Running a unit of work on PostgreSQL, retrying exactly when that is safe.

Three things can go wrong under a statement, and each calls for something
different. The server aborted the transaction (serialization failure,
deadlock): it wrote nothing, so run it again. The connection died before
``COMMIT`` was sent: nothing can have been written either, so run it again
on a fresh connection. The connection died *while* committing: the outcome
is unknown, so only an idempotent write may be repeated; anything else is
reported as such. Work done under a stack lock runs on the lock's own
connection and is never moved to another one: if that connection is gone,
so is the lock.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg

from erelease.errors import ErelaseError, StateError
from erelease.state._pg_conn import PgConn, Pool, connection_lost, query_error, retry_transaction

__all__ = ["Cursor", "Held", "run"]

T = TypeVar("T")
Cursor = psycopg.Cursor[Any]

ATTEMPTS = 4


@dataclass
class Held:
    """A stack lock this process holds: its dedicated connection."""

    conn: PgConn
    stack: str
    mutex: threading.Lock = field(default_factory=threading.Lock)


def _once(conn: PgConn, body: Callable[[Cursor], T], *, transaction: bool, snapshot: bool) -> T:
    if not transaction:
        with conn.cursor() as cur:
            return body(cur)
    with conn.transaction(), conn.cursor() as cur:
        if snapshot:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return body(cur)


def run(
    pool: Pool,
    where: str,
    doing: str,
    body: Callable[[Cursor], T],
    *,
    idempotent: bool = True,
    transaction: bool = True,
    snapshot: bool = False,
    held: Held | None = None,
) -> T:
    """Run ``body`` on a pooled connection (or ``held``'s), in one transaction unless
    ``transaction`` is false (a single autocommitted statement)."""
    attempt = 0
    while True:
        attempt += 1
        conn = held.conn if held is not None else pool.get()
        finished = False  # the body ran to its end: a failure now is in COMMIT

        def marked(cur: Cursor) -> T:
            nonlocal finished
            out = body(cur)
            finished = True
            return out

        try:
            with held.mutex if held is not None else contextlib.nullcontext():
                result = _once(conn, marked, transaction=transaction, snapshot=snapshot)
        except ErelaseError:
            if held is None:
                pool.put(conn)
            raise
        except psycopg.Error as exc:
            lost = connection_lost(exc, conn)
            # may this attempt have been committed after all?
            sent = finished if transaction else not idempotent
            if held is None:
                pool.put(conn)
                if lost:
                    pool.close_idle()
            if attempt < ATTEMPTS and retry_transaction(exc):
                time.sleep(random.uniform(0.01, 0.05) * 2**attempt)
                continue
            if lost and held is not None:
                outcome = (
                    "the outcome is unknown: check `erelease state history`"
                    if sent
                    else "nothing was written; plan again"
                )
                raise StateError(
                    f"lost the connection holding the lock of stack {held.stack!r} "
                    f"(PostgreSQL at {where}) while trying to {doing}; {outcome}"
                ) from exc
            if lost and attempt < ATTEMPTS and (idempotent or not sent):
                continue
            if lost and sent:
                raise StateError(
                    f"lost the connection to PostgreSQL at {where} while trying to {doing}; "
                    "it may or may not have been written"
                ) from exc
            raise query_error(exc, where, doing, lost=lost) from exc
        except BaseException:
            if held is None:
                conn.close()
            raise
        if held is None:
            pool.put(conn)
        return result
