"""Many processes at one stack: the lock and the serial keep the registry whole."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

from erelease.state import StateStore
from tests.integration.state import workers

S = "district-42"
WORKERS = 6


def test_six_concurrent_applies(store_url: str, store: StateStore, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    go = tmp_path / "go"
    procs = []
    for i in range(WORKERS):
        timeout = 20.0 if i % 2 else 0.0  # half wait for the lock, half give up at once
        out = tmp_path / f"result-{i}.json"
        proc = ctx.Process(
            target=workers.apply_config,
            args=(store_url, S, i, timeout, str(go), str(out)),
        )
        proc.start()
        procs.append(proc)
    time.sleep(0.3)
    go.touch()
    for proc in procs:
        proc.join(60)
    codes = [proc.exitcode for proc in procs]
    assert all(code in (0, workers.EXIT_LOCKED) for code in codes), codes
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("result-*.json"))]
    assert len(results) == codes.count(0) >= 3  # every waiter gets its turn
    assert sorted(r["serial"] for r in results) == list(range(1, len(results) + 1))
    history = store.history(stack=S)
    assert len(history) == len(results)
    last = max(results, key=lambda r: r["serial"])
    names = [r.name for r in store.list_connections(stack=S)]
    assert names == sorted(workers.config_of(last["worker"]))
    matching = [i for i in range(WORKERS) if sorted(workers.config_of(i)) == names]
    assert matching == [last["worker"]]
    assert store.current_lock(stack=S) is None


def test_a_killed_holder_does_not_block_the_next_apply(
    store_url: str, store: StateStore, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready = tmp_path / "ready"
    proc = ctx.Process(target=workers.hold_lock, args=(store_url, S, str(ready)))
    proc.start()
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert time.monotonic() < deadline and proc.is_alive(), "the holder never locked"
        time.sleep(0.02)
    held = store.current_lock(stack=S)
    assert held is not None and held.pid == int(ready.read_text())
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    # no `state unlock`, and not even waiting for the parent to reap it:
    # PostgreSQL ends the dead session's advisory lock, SQLite sees that the
    # holder's process on this host is gone
    with store.acquire_lock(stack=S, operation="apply", timeout=10) as lock:
        assert store.current_lock(stack=S) == lock.info
    proc.join(10)
    assert store.current_lock(stack=S) is None


def test_a_forked_child_leaves_the_parents_store_alone(store: StateStore) -> None:
    from tests.integration.state.records import commit, outgoing

    commit(store, S, [outgoing("a")])
    lock = store.acquire_lock(stack=S, operation="apply")
    child = multiprocessing.get_context("fork").Process(
        target=workers.forked_child, args=(store, S)
    )
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert store.current_lock(stack=S) == lock.info
    assert commit(store, S, [outgoing("b")]).serial == 2
    lock.release()
