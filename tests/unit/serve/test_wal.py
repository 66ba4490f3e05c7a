"""SQLite while serving: the WAL stays short without commits checkpointing; writes take turns."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

import erelease.serve._wal as wal
from erelease.model import TokenRecord
from erelease.serve._wal import BACKSTOP_PAGES, DEFAULT_PAGES, WriteGate, wal_checkpoints
from erelease.state.sqlite import SQLiteStore

STACK = "s"
_fork = multiprocessing.get_context("fork")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "state.db")
    try:
        yield opened
    finally:
        opened.close()


def _autocheckpoint(store: SQLiteStore) -> int:
    return int(store._conn().execute("PRAGMA wal_autocheckpoint").fetchone()[0])


def _token(i: int) -> TokenRecord:
    return TokenRecord(f"{i:064x}", "client", "name", "d" * 64, 4e9)


def test_commits_stop_checkpointing_while_serving_and_resume_after(store: SQLiteStore) -> None:
    assert _autocheckpoint(store) == DEFAULT_PAGES
    with wal_checkpoints(store, gate=WriteGate(), interval=60) as checkpointer:
        assert checkpointer is not None
        assert _autocheckpoint(store) == BACKSTOP_PAGES
    assert _autocheckpoint(store) == DEFAULT_PAGES


def test_other_stores_are_left_alone() -> None:
    class Other:
        pass

    with wal_checkpoints(Other(), gate=WriteGate()) as checkpointer:  # type: ignore[arg-type]
        assert checkpointer is None


def test_the_wal_is_restarted_under_steady_writes(store: SQLiteStore, tmp_path: Path) -> None:
    gate = WriteGate()
    written = 0
    with wal_checkpoints(store, gate=gate, interval=0.02) as checkpointer:
        assert checkpointer is not None
        deadline = time.monotonic() + 10
        while checkpointer.restarts < 3 and time.monotonic() < deadline:
            for _ in range(50):
                with gate.held():
                    store.store_token(stack=STACK, token=_token(written))
                written += 1
            time.sleep(0.001)  # a server's commits leave gaps; a tight loop would not
    assert checkpointer.restarts >= 3
    # without restarts the WAL would hold every page ever written (several per token)
    wal_pages = (tmp_path / "state.db-wal").stat().st_size // 4096
    assert wal_pages < written * 2
    # and nothing committed was lost on the way
    held = store._conn().execute("SELECT count(*) FROM tokens").fetchone()[0]
    assert held == written


def _hold(gate: WriteGate, ready: Connection, seconds: float) -> None:
    with gate.held():
        ready.send("held")
        time.sleep(seconds)


def test_the_gate_is_shared_with_forked_workers() -> None:
    gate = WriteGate()
    ours, theirs = _fork.Pipe()
    child = _fork.Process(target=_hold, args=(gate, theirs, 0.3))
    child.start()
    try:
        assert ours.recv() == "held"
        start = time.monotonic()
        with gate.held():
            waited = time.monotonic() - start
        assert 0.1 < waited < wal.GATE_TIMEOUT
    finally:
        child.join(10)


def test_a_gate_held_forever_is_passed_after_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wal, "GATE_TIMEOUT", 0.2)
    gate = WriteGate()
    ours, theirs = _fork.Pipe()
    child = _fork.Process(target=_hold, args=(gate, theirs, 60))  # as a worker that died in it
    child.start()
    try:
        assert ours.recv() == "held"
        start = time.monotonic()
        with gate.held():
            assert 0.15 < time.monotonic() - start < 5
    finally:
        child.kill()
        child.join(10)
