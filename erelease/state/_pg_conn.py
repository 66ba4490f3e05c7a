"""Connections to PostgreSQL: opening them, pooling them, and saying what went wrong.

A district IT admin who meets "OperationalError: consuming input failed"
learns nothing. Every psycopg failure is turned here into one sentence that
names the server (password masked), what erelease was doing and what to
check — and is classified, because the caller must know whether a retry is
safe: a serialization failure or deadlock rolled the transaction back (retry
it); a connection lost before ``COMMIT`` was sent cannot have written
anything (retry on a fresh connection); a connection lost *during* ``COMMIT``
has an unknown outcome (never retry blindly).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus

from erelease.errors import StateError

__all__ = [
    "PgConn",
    "Pool",
    "connect",
    "connect_error",
    "connection_lost",
    "query_error",
    "retry_transaction",
    "session_setup",
]

PgConn = psycopg.Connection[Any]

#: libpq settings erelease supplies when the URL does not
_DEFAULTS = {
    "connect_timeout": "10",
    "application_name": "erelease",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}


#: Set on every new session, after the login rather than as ``options`` in the
#: startup packet: PgBouncer refuses startup parameters it does not track (such as
#: ``search_path``), while a plain ``SET`` passes any session-mode pooler. The
#: keepalives are the server's side of the libpq ones above: a runner that vanishes
#: while holding a stack lock (a reclaimed VM, a cut network) sends no FIN, and with
#: the kernel's defaults the server would keep its session — and the lock — for over
#: two hours; with these it ends it within about a minute. The URL's own
#: ``options=-c tcp_keepalives_…`` win.
_SEARCH_PATH = "set_config('search_path', 'erelease', false)"
_SERVER_KEEPALIVES = (
    "set_config('tcp_keepalives_idle', '30', false)",
    "set_config('tcp_keepalives_interval', '10', false)",
    "set_config('tcp_keepalives_count', '3', false)",
)


def conninfo(url: str) -> str:
    """The URL's libpq parameters, with erelease's defaults added."""
    try:
        params: dict[str, Any] = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise StateError("the PostgreSQL state URL cannot be parsed; check its syntax") from exc
    for key, value in _DEFAULTS.items():
        params.setdefault(key, value)
    return make_conninfo("", **params)


@functools.lru_cache(maxsize=8)
def session_setup(dsn: str) -> str:
    """The one statement that prepares a new session (see :data:`_SERVER_KEEPALIVES`)."""
    options = str(conninfo_to_dict(dsn).get("options") or "")
    keepalives = () if "tcp_keepalives" in options else _SERVER_KEEPALIVES
    return "SELECT " + ", ".join((*keepalives, _SEARCH_PATH))


def _first_line(exc: BaseException) -> str:
    """libpq's reason, without its "connection to server … failed:" preamble."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    line = lines[0].rsplit("failed:", 1)[-1]
    return " ".join(line.replace("FATAL:", "").replace("ERROR:", "").split())


def connect_error(exc: psycopg.Error, where: str) -> StateError:
    """A failed connect, explained (libpq gives no SQLSTATE here, only text)."""
    text = str(exc)
    low = text.lower()
    if "authentication failed" in low or "no password supplied" in low or "pg_hba.conf" in low:
        return StateError(
            f"PostgreSQL at {where} refused the login: authentication failed",
            hint="check the user and password in the state URL, PGPASSWORD or ~/.pgpass",
        )
    if "role" in low and "does not exist" in low:
        return StateError(f"PostgreSQL at {where} refused the login: {_first_line(exc)}")
    if "database" in low and "does not exist" in low:
        return StateError(
            f"PostgreSQL at {where}: {_first_line(exc)}",
            hint="create it first (createdb), erelease creates only its own schema",
        )
    if "ssl" in low or "certificate" in low:
        return StateError(
            f"TLS to PostgreSQL at {where} failed: {_first_line(exc)}",
            hint="check sslmode / sslrootcert in the state URL",
        )
    return StateError(
        f"cannot reach PostgreSQL at {where}: {_first_line(exc)}",
        hint="is the server running, and are the host and port in the state URL right?",
    )


def connection_lost(exc: BaseException, conn: PgConn | None) -> bool:
    """True when the connection itself failed (not the statement)."""
    if isinstance(exc, psycopg.errors.AdminShutdown | psycopg.errors.ConnectionFailure):
        return True
    if conn is not None and (conn.broken or conn.closed):
        return True
    return isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None


def retry_transaction(exc: BaseException) -> bool:
    """True when the server rolled the transaction back and a retry may succeed."""
    return isinstance(exc, psycopg.errors.SerializationFailure | psycopg.errors.DeadlockDetected)


def query_error(exc: psycopg.Error, where: str, doing: str, *, lost: bool) -> StateError:
    """A failed statement or transaction, explained (``lost``: see :func:`connection_lost`)."""
    state = exc.sqlstate or ""
    if lost:
        return StateError(
            f"lost the connection to PostgreSQL at {where} while trying to {doing}; "
            "nothing of that step was written"
        )
    if retry_transaction(exc):
        return StateError(
            f"PostgreSQL at {where} kept aborting the attempt to {doing} because of concurrent "
            "transactions (serialization failure); nothing was written, try again"
        )
    if state == "42501":
        return StateError(
            f"PostgreSQL at {where} denied the attempt to {doing}: permission denied",
            hint="the state user needs CREATE on the database (for schema erelease) "
            "and all privileges on schema erelease",
        )
    if state == "25006":
        return StateError(f"PostgreSQL at {where} is read-only (a standby?); cannot {doing}")
    message = exc.diag.message_primary or _first_line(exc)
    return StateError(
        f"PostgreSQL at {where} failed to {doing}: {message}" + (f" ({state})" if state else "")
    )


def connect(dsn: str, where: str) -> PgConn:
    """A new autocommit connection; StateError (explained) if it cannot be made."""
    try:
        conn = psycopg.connect(dsn, autocommit=True)
    except psycopg.Error as exc:
        raise connect_error(exc, where) from exc
    try:
        conn.execute(session_setup(dsn))
    except psycopg.Error as exc:
        lost = connection_lost(exc, conn)
        conn.close()
        raise query_error(exc, where, "set up the session", lost=lost) from exc
    return conn


class Pool:
    """Idle connections for short data statements, shared by threads (``serve``).

    Lock holders never come from here: a stack lock lives on a connection of
    its own, so returning a connection to the pool can never hand a lock on.
    """

    def __init__(self, factory: Callable[[], PgConn], *, keep: int = 16) -> None:
        self._factory = factory
        self._keep = keep
        self._idle: list[PgConn] = []
        self._lock = threading.Lock()
        self._closed = False
        self._pid = os.getpid()
        # connections of a parent process: never used, closed or collected here
        # (freeing one would end the parent's session)
        self.inherited: list[object] = []

    def forked(self) -> bool:
        """True (once per child) when this process is a fork of the one that made us."""
        if self._pid == os.getpid():
            return False
        self.inherited.extend(self._idle)
        self._idle, self._pid, self._lock = [], os.getpid(), threading.Lock()
        return True

    def get(self) -> PgConn:
        self.forked()
        with self._lock:
            if self._closed:
                raise StateError("the PostgreSQL state store is closed")
            while self._idle:
                conn = self._idle.pop()
                if not (conn.closed or conn.broken):
                    return conn
        return self._factory()

    def put(self, conn: PgConn) -> None:
        if self.forked():
            self.inherited.append(conn)
            return
        healthy = (
            not (conn.closed or conn.broken)
            and conn.info.transaction_status == TransactionStatus.IDLE
        )
        with self._lock:
            if healthy and not self._closed and len(self._idle) < self._keep:
                self._idle.append(conn)
                return
        conn.close()

    def close_idle(self) -> None:
        """Drop idle connections (after one was found dead, the others likely are too)."""
        self.forked()
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.close_idle()
