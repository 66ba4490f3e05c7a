"""Run the erelease CLI in this process, with one of its own seams replaced.

Usage: ``python driver.py MODE MARKER [GO | PAUSE] -- ERELEASE_ARGS...``

The crash and race tests need an apply that stops at a known point: after the
stack lock is taken and every Vault write is done, right before the one registry
transaction. That point is ``StateStore.commit`` of either backend. Modes:

- ``hang``: write our pid to MARKER, then sleep while holding the lock (until killed);
- ``die``: write our pid to MARKER, then SIGKILL ourselves (a crash after the Vault
  writes and before the commit);
- ``slow``: write our pid to MARKER once imported, wait for the file GO to exist (so
  several drivers start the CLI at one moment), then run normally but hold the lock a
  little longer inside commit, so that simultaneous applies really meet;
- ``gap`` (PostgreSQL): once the stack's advisory lock is taken, write our pid to MARKER
  and pause for PAUSE seconds *before* the lock row naming us is written (and again after
  it), then carry on
  normally. It widens the moment between the two steps of taking the lock, which is
  otherwise a few milliseconds long, so a test can look at it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SLOW_COMMIT_S = 0.15


def _mark(marker: Path) -> None:
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(str(os.getpid()), encoding="ascii")
    os.replace(tmp, marker)


def _seam(mode: str, marker: Path, original: Callable[..., Any]) -> Callable[..., Any]:
    def commit(self: Any, **kwargs: Any) -> Any:
        if mode == "slow":
            time.sleep(SLOW_COMMIT_S)
            return original(self, **kwargs)
        _mark(marker)
        if mode == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        while True:
            time.sleep(60)

    return commit


def _widen_gap(marker: Path, pause: float) -> None:
    from erelease.state import _pg_lock

    original = _pg_lock.try_lock

    def try_lock(conn: Any, info: Any) -> bool:
        key = _pg_lock.key(info.stack)
        got = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,))
        row = got.fetchone()
        if row is None or not row[0]:
            return False
        # session advisory locks nest: the original takes it a second time and writes
        # the row; dropping our extra level afterwards leaves exactly one, still held
        try:
            _mark(marker)
            time.sleep(pause)
            taken = bool(original(conn, info))
            # Linger once the row is written too, so that a contender that arrives
            # late on a busy machine still meets a held lock, now with its name.
            time.sleep(pause)
            return taken
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))

    _pg_lock.try_lock = try_lock


def main() -> None:
    split = sys.argv.index("--")
    mode, marker, *rest = sys.argv[1:split]
    args = sys.argv[split + 1 :]
    if mode not in ("hang", "die", "slow", "gap"):
        raise SystemExit(f"unknown mode {mode!r}")

    from erelease.cli import main as cli_main
    from erelease.state.postgres import PostgresStore
    from erelease.state.sqlite import SQLiteStore

    if mode == "gap":
        _widen_gap(Path(marker), float(rest[0]))
    else:
        for cls in (SQLiteStore, PostgresStore):
            cls.commit = _seam(mode, Path(marker), cls.commit)  # type: ignore[method-assign]
    if mode == "slow":
        _mark(Path(marker))
        go = Path(rest[0])
        deadline = time.monotonic() + 60
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.002)
    sys.argv = ["erelease", *args]
    cli_main()


if __name__ == "__main__":
    main()
