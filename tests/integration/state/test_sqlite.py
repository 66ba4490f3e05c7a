"""What only the SQLite file promises: its permissions, its schema, local stale locks."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from erelease.errors import StateError, StateLocked
from erelease.model import TokenRecord
from erelease.state import open_store
from erelease.state.sqlite import SQLiteStore
from tests.integration.state.records import commit, incoming

S = "district-42"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_file_is_private_and_created_with_its_directory(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = open_store("sqlite:///.erelease/state.db", base_dir=tmp_path)
    finally:
        os.umask(old)
    path = tmp_path / ".erelease" / "state.db"
    assert isinstance(store, SQLiteStore) and store.path == path
    commit(store, S, [incoming("cfnc", "C" * 16)])
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    for sidecar in path.parent.glob("state.db-*"):
        assert _mode(sidecar) == 0o600
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    store.close()


def test_absolute_and_relative_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = open_store(f"sqlite:///{tmp_path}/abs.db")
    assert absolute.url == f"sqlite:///{tmp_path}/abs.db"
    absolute.close()
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///rel/state.db")
    assert (tmp_path / "rel" / "state.db").exists()
    relative.close()


def test_wal_and_recorded_migrations(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    store.close()
    conn = sqlite3.connect(tmp_path / "state.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations")] == [1]
    conn.close()
    open_store(f"sqlite:///{tmp_path}/state.db").close()  # reopening migrates nothing


def test_a_file_from_a_newer_erelease_is_refused(tmp_path: Path) -> None:
    open_store(f"sqlite:///{tmp_path}/state.db").close()
    conn = sqlite3.connect(tmp_path / "state.db")
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 'x')")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match=r"schema version 99.*upgrade erelease"):
        open_store(f"sqlite:///{tmp_path}/state.db")


def test_a_file_that_is_not_a_registry_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state.db").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StateError, match=f"{tmp_path}/state.db.*not a valid SQLite"):
        open_store(f"sqlite:///{tmp_path}/state.db")


def test_history_is_append_only(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    commit(store, S, [incoming("cfnc", "C" * 16)])
    store.close()
    conn = sqlite3.connect(tmp_path / "state.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE history SET actor = 'someone else'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM history")
    conn.close()


def test_a_reused_pid_does_not_keep_a_dead_lock(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    lock = store.acquire_lock(stack=S, operation="apply")
    # the holder died and its pid now belongs to another process (here: us)
    store._conn().execute("UPDATE locks SET proc_start = '1' WHERE stack = ?", (S,))
    other = SQLiteStore(tmp_path / "state.db")
    with other.acquire_lock(stack=S, operation="apply") as taken:
        assert taken.info.lock_id != lock.info.lock_id
    other.close()
    store.close()


def test_a_lock_held_on_another_host_is_never_taken_over(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    lock = store.acquire_lock(stack=S, operation="apply")
    store._conn().execute(
        "UPDATE locks SET host = 'ci-runner-7', pid = 999999 WHERE stack = ?", (S,)
    )
    other = SQLiteStore(tmp_path / "state.db")
    with pytest.raises(StateLocked, match="ci-runner-7"):
        other.acquire_lock(stack=S, operation="apply")
    assert other.current_lock(stack=S) is not None
    other.close()
    lock.release()
    store.close()


def test_serve_threads_share_one_store(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    commit(store, S, [incoming("cfnc", "C" * 16)])
    errors: list[BaseException] = []

    def serve(worker: int) -> None:
        try:
            for i in range(200):
                digest = f"{worker:02d}{i:062d}"
                token = TokenRecord(digest, "C" * 16, "incoming/cfnc", "d" * 64, 2e9)
                store.store_token(stack=S, token=token)
                assert store.lookup_token(stack=S, token_sha256=digest, now=1.0) == token
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=serve, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    commit(store, S, [incoming("cfnc", "C" * 16)])  # an apply meanwhile
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.purge_tokens(stack=S, now=3e9) == 1600
    store.close()
