"""Serving from an SQLite registry: WAL checkpoints off the request path, writes taking turns.

Every token issued is one small commit to the write-ahead log (WAL). Two of
SQLite's defaults, right for a command-line tool, make a busy server stall:

* **Checkpoints in commits.** SQLite copies the WAL back into the database
  (a *checkpoint*, ending in ``fsync`` calls) inside whichever commit pushes
  the WAL past 1,000 pages: under load, one token request in a few hundred
  stalls for 20 ms or more, and every request queued behind it on the event
  loop waits as long. That is the latency tail of the Token URL.
* **Sleeping on a busy lock.** One writer at a time holds the WAL's write
  lock; another that finds it taken is put to sleep by SQLite's busy handler
  for 1, 2, 5, 10 ms..., however soon the lock comes free. Two serving
  processes issuing tokens meet that on a good share of their commits.

So a serving process raises the commit threshold to a backstop it should
never reach, and a thread of its own (:class:`WalCheckpointer`) keeps the
WAL short, every ``interval``:

1. ``PASSIVE`` checkpoints copy what has been committed, waiting for no
   reader or writer (Python's ``sqlite3`` releases the GIL meanwhile, so
   requests go on being answered); a round or two, until little is left.
2. One ``RESTART`` checkpoint copies that little and lets the next commit
   start the WAL file from the beginning. It holds commits back for a few
   milliseconds once per interval rather than twenty every few hundred
   tokens. Without it the WAL would never be checkpointed *completely* under
   steady load (commits arrive while a passive checkpoint runs), so it would
   only grow.

And the server's own writes (token inserts, disclosures, purges and that
restart) take turns through a :class:`WriteGate`, a lock shared by every
worker forked from one ``erelease serve``, which wakes the next writer the
moment it is released. SQLite's locking still decides: the gate only keeps
the server's writers from meeting in SQLite's lock, and anyone else (an
``apply``, another server) is handled by SQLite as before. A gate not
obtained within :data:`GATE_TIMEOUT` is passed without, so a worker that died
holding it cannot stop the others.

Only housekeeping and the order of the server's own writes change: commits,
their durability and what every request reads do not. Nothing here is used
for PostgreSQL.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from erelease.errors import StateError
from erelease.state.base import StateStore
from erelease.state.sqlite import SQLiteStore

__all__ = [
    "BACKSTOP_PAGES",
    "CHECKPOINT_INTERVAL",
    "GATE_TIMEOUT",
    "WalCheckpointer",
    "WriteGate",
    "wal_checkpoints",
]

#: Seconds between background checkpoints.
CHECKPOINT_INTERVAL = 1.0
#: Pages past which a commit still checkpoints itself (the thread is stuck, or far behind).
BACKSTOP_PAGES = 50_000
#: SQLite's own threshold, restored when serving stops.
DEFAULT_PAGES = 1_000
#: Seconds a writer waits for the gate before it writes without it.
GATE_TIMEOUT = 1.0
#: Passive rounds per interval, and what may be left for the restart to copy.
_PASSIVE_ROUNDS = 6
_RESTART_FRAMES = 64
#: How long the restart may wait for a writer outside the gate before skipping a round.
_RESTART_WAIT_MS = 50

log = logging.getLogger("erelease.serve")


class WriteGate:
    """One writer at a time among the processes forked after it was made."""

    def __init__(self) -> None:
        try:  # a fork-context lock is an unlinked POSIX semaphore: nothing to clean up
            self._lock: Any = multiprocessing.get_context("fork").Lock()
        except ValueError:  # no fork() here, so no workers to share it with
            self._lock = threading.Lock()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        acquired = self._lock.acquire(timeout=GATE_TIMEOUT)
        try:
            yield
        finally:
            if acquired:
                self._lock.release()


class WalCheckpointer:
    """A daemon thread that checkpoints the WAL of the SQLite file at ``path``."""

    def __init__(
        self, path: Path, *, interval: float = CHECKPOINT_INTERVAL, gate: WriteGate | None = None
    ) -> None:
        self.path = path
        self.interval = interval
        self.gate = gate or WriteGate()
        self.rounds = 0  # checkpoints run, and how many of them restarted the WAL
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)

    def start(self) -> WalCheckpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the round in progress (if any) and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {_RESTART_WAIT_MS:d}")
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error:
            log.warning("cannot open the registry to checkpoint it; commits will do it")
            return
        warned = False
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.checkpoint(conn)
                    warned = False
                except sqlite3.Error as exc:
                    if not warned:
                        log.warning("could not checkpoint the registry: %s", exc)
                        warned = True
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """Passive rounds until one finds little new, then a restart (see the module doc)."""
        self.rounds += 1
        seen = -1  # WAL frames the previous round found
        for _ in range(_PASSIVE_ROUNDS):
            busy, frames, _done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if busy or frames < DEFAULT_PAGES:
                return  # another process checkpoints, or the WAL is short: not yet
            if seen >= 0 and frames - seen <= _RESTART_FRAMES:
                break  # little arrived while that round ran, so little is left now
            seen = frames
        # what is left is copied while the server's commits wait for the gate; after
        # the last passive round that is little, unless commits outpace the copying
        with self.gate.held():
            conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        self.restarts += 1


@contextlib.contextmanager
def wal_checkpoints(
    store: StateStore, *, gate: WriteGate, interval: float = CHECKPOINT_INTERVAL
) -> Iterator[WalCheckpointer | None]:
    """While serving from an SQLite ``store``, checkpoint on a thread, not in commits."""
    if not isinstance(store, SQLiteStore) or interval <= 0:
        yield None
        return
    store.set_wal_autocheckpoint(BACKSTOP_PAGES)
    checkpointer = WalCheckpointer(store.path, interval=interval, gate=gate).start()
    try:
        yield checkpointer
    finally:
        checkpointer.stop()
        with contextlib.suppress(StateError, sqlite3.Error):
            store.set_wal_autocheckpoint(DEFAULT_PAGES)
