"""What both registry backends share: row encoding, clocks, identities, liveness.

SQLite and PostgreSQL must store exactly the same logical model so that
``state migrate`` can copy a stack either way and verify the copy by
comparing values. Keeping the encoding of a :class:`ConnectionRecord` into
columns (and back) in one place is what makes that comparison meaningful.

JSON is encoded strictly: anything that is not plain JSON (a ``Secret``, a
``SecretRef`` object, a set, ...) is refused with a :class:`StateError` rather
than stringified, because a silently stringified value is how secrets leak
into a registry.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from erelease.errors import StateError, StateLocked
from erelease.model import KINDS, CheckResult, ConnectionRecord, HistoryEntry, Kind, LockInfo

__all__ = [
    "Backoff",
    "ConnRow",
    "Holder",
    "decode_connection",
    "decode_history",
    "encode_connection",
    "encode_json",
    "locked_error",
    "mask_url",
    "new_lineage",
    "now_iso",
    "parse_address",
    "pid_alive",
    "process_start",
    "summary_json",
]

#: the column order every backend uses for the connections table
ConnRow = tuple[str, str, str, str, str, str, str, bool, str, str, str | None, str | None]


def now_iso() -> str:
    """The current UTC time as ISO 8601 with a ``Z`` (what the registry stores)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_lineage() -> str:
    return str(uuid.uuid4())


def encode_json(value: object, *, what: str) -> str:
    """Strict, stable JSON text; :class:`StateError` for anything not plain JSON."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StateError(
            f"cannot store {what}: it holds a value that is not plain JSON "
            f"({type(exc).__name__}); references must be stored as their URI strings "
            "and secret values are never stored"
        ) from exc
    if "\\u0000" in text.replace("\\\\", ""):
        # PostgreSQL's jsonb refuses U+0000; refused on SQLite too, so that both
        # backends hold the same model and every stack can be migrated
        raise StateError(f"cannot store {what}: a value holds a NUL character (\\0)")
    return text


def encode_connection(
    stack: str, record: ConnectionRecord, *, now: str, keep_times: bool = False
) -> ConnRow:
    """One connections-table row for ``record``.

    A commit stamps ``updated_at`` with ``now`` (and ``created_at`` for a new
    row that has none); an import (``keep_times``) keeps both as they were.
    """
    what = f"{record.address}"
    if record.kind not in KINDS:
        raise StateError(f"cannot store {what}: unknown kind {record.kind!r}")
    client_id = record.outputs.get("clientId")
    digest = record.outputs.get("clientSecretSha256")
    return (
        stack,
        record.kind,
        record.name,
        encode_json(record.spec, what=f"{what} spec"),
        encode_json(record.secret_versions, what=f"{what} secret versions"),
        encode_json(record.outputs, what=f"{what} outputs"),
        encode_json(record.labels, what=f"{what} labels"),
        bool(record.protect),
        record.created_at or now,
        (record.updated_at or now) if keep_times else now,
        client_id if isinstance(client_id, str) else None,
        digest if isinstance(digest, str) else None,
    )


def _loads(value: Any) -> Any:
    """Text from SQLite, already-decoded values from PostgreSQL's jsonb."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def decode_connection(row: Sequence[Any]) -> ConnectionRecord:
    """A record from ``kind, name, spec, secret_versions, outputs, labels, protect,
    created_at, updated_at`` then ``status, reason, message, duration_ms, checked_at``
    of the last test (all NULL when never tested)."""
    kind: Kind = row[0]
    last: CheckResult | None = None
    if row[9] is not None:
        last = CheckResult(
            address=f"{kind}/{row[1]}",
            kind=kind,
            name=row[1],
            status=row[9],
            reason=row[10],
            message=row[11],
            duration_ms=int(row[12]),
            checked_at=row[13],
        )
    return ConnectionRecord(
        kind=kind,
        name=row[1],
        spec=_loads(row[2]),
        secret_versions=_loads(row[3]),
        outputs=_loads(row[4]),
        labels=_loads(row[5]),
        protect=bool(row[6]),
        created_at=row[7],
        updated_at=row[8],
        last_test=last,
    )


def decode_history(row: Sequence[Any]) -> HistoryEntry:
    """A history entry from ``serial, applied_at, actor, git_commit, summary, changes``."""
    changes = _loads(row[5])
    return HistoryEntry(
        serial=int(row[0]),
        applied_at=row[1],
        actor=row[2],
        git_commit=row[3],
        summary=_loads(row[4]),
        changes=tuple((str(a), str(b)) for a, b in changes),
    )


def parse_address(address: str) -> tuple[str, str] | None:
    """``kind/name`` → ``(kind, name)``, or ``None`` if it is not an address."""
    kind, sep, name = address.partition("/")
    if not sep or kind not in KINDS or not name:
        return None
    return kind, name


#: ``password=…`` (or ``sslpassword=…``) in a URL's query or a libpq keyword string
_PASSWORD_PARAM = re.compile(
    r"(?i)((?:^|[?&\s])(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^&\s]*)"
)


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe to print).

    Masks the password of the userinfo and ``password=`` parameters of the
    query (libpq reads both), and the same in a libpq ``key=value`` string.
    RFC 3986 §3.2.1 wants ``@ : / ? #`` in a password percent-encoded, but
    libpq takes a raw ``#`` or ``?`` there and people paste raw ``/`` too, so
    the userinfo is everything up to the *last* ``@``: masking too much beats
    printing a password.
    """
    scheme, sep, rest = url.partition("://")
    if sep and not scheme.startswith("sqlite"):  # a file path holds no password
        userinfo, at, hostpart = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        if at and colon:
            rest = f"{user}:***@{hostpart}"
        url = f"{scheme}{sep}{rest}"
    return _PASSWORD_PARAM.sub(r"\1***", url)


# -- who holds a lock ---------------------------------------------------------


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) and no USER variable
        return "unknown"


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3… of ``/proc/<pid>/stat`` (Linux), or ``None``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = stat.rpartition(")")[2].split()
    return fields if len(fields) > 19 else None


def process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), to tell a reused pid from its holder."""
    fields = _proc_stat(pid)
    return fields[19] if fields is not None else None


def pid_alive(pid: int, start: str | None = None) -> bool:
    """Whether ``pid`` runs on this host (and, if ``start`` is known, is the same process).

    A zombie (killed, not yet reaped by its parent) is dead: it holds nothing.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    fields = _proc_stat(pid)
    if fields is None:
        return True  # no /proc: trust kill(0)
    if fields[0] in ("Z", "X"):
        return False
    return start is None or fields[19] == start


@dataclass(frozen=True)
class Holder:
    """This process as a lock holder."""

    user: str
    host: str
    pid: int

    @classmethod
    def current(cls) -> Holder:
        return cls(user=_user(), host=socket.gethostname(), pid=os.getpid())

    def new_lock(self, *, stack: str, operation: str) -> LockInfo:
        return LockInfo(
            lock_id=str(uuid.uuid4()),
            stack=stack,
            holder=self.user,
            host=self.host,
            pid=self.pid,
            operation=operation,
            since=now_iso(),
        )


def locked_error(stack: str, info: LockInfo, *, hint: str | None = None) -> StateLocked:
    """The exit-4 error naming who holds the lock."""
    err = StateLocked(f"the state of stack {stack!r} is locked by {info.describe()}", lock=info)
    err.hint = hint or (
        "wait, retry with --lock-timeout, or if that process is gone: "
        f"erelease state unlock {info.lock_id}"
    )
    return err


class Backoff:
    """Polling intervals for lock waits: short at first, then up to half a second."""

    def __init__(self, timeout: float) -> None:
        self.deadline = time.monotonic() + max(0.0, timeout)
        self.delay = 0.02

    def wait(self) -> bool:
        """Sleep before the next try; ``False`` once the deadline has passed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(self.delay, left))
        self.delay = min(self.delay * 1.6, 0.5)
        return True


def summary_json(summary: Mapping[str, int], changes: Sequence[tuple[str, str]]) -> tuple[str, str]:
    return (
        encode_json(dict(summary), what="the history summary"),
        encode_json([list(c) for c in changes], what="the history changes"),
    )
