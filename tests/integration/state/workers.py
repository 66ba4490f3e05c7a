"""Code run in child processes (spawned, so it must be importable by name)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from erelease.errors import StateLocked
from erelease.state import open_store
from tests.integration.state.records import commit, outgoing

EXIT_LOCKED = 4


def config_of(worker: int) -> list[str]:
    """The connection names worker ``worker`` applies: distinct per worker."""
    return [f"w{worker}-c{j}" for j in range(3 + worker)]


def apply_config(url: str, stack: str, worker: int, timeout: float, go: str, out: str) -> None:
    """Like ``erelease apply``: lock, read, replace the registry with our config, commit."""
    while not os.path.exists(go):  # start together
        time.sleep(0.005)
    store = open_store(url)
    try:
        with store.acquire_lock(stack=stack, operation=f"apply #{worker}", timeout=timeout):
            current = [(r.kind, r.name) for r in store.list_connections(stack=stack)]
            wanted = config_of(worker)
            time.sleep(0.15)  # hold the lock long enough for others to collide
            info = commit(
                store,
                stack,
                [outgoing(name, worker=worker) for name in wanted],
                [(k, n) for k, n in current if n not in wanted],
            )
        Path(out).write_text(json.dumps({"worker": worker, "serial": info.serial}))
    except StateLocked:
        sys.exit(EXIT_LOCKED)
    finally:
        store.close()


def hold_lock(url: str, stack: str, ready: str) -> None:
    """Take the lock, say so, and wait to be killed."""
    store = open_store(url)
    store.acquire_lock(stack=stack, operation="apply (to be killed)")
    Path(ready).write_text(str(os.getpid()))
    time.sleep(120)


def forked_child(store: object, stack: str) -> None:
    """In a fork of a process that holds the lock: read, try to lock, close, exit."""
    from erelease.state import StateStore

    assert isinstance(store, StateStore)
    assert [r.name for r in store.list_connections(stack=stack)] == ["a"]
    try:
        store.acquire_lock(stack=stack, operation="child")
    except StateLocked:
        pass
    else:
        sys.exit(1)  # the parent's lock must hold against its own child
    store.close()  # must not release the parent's lock or end its sessions
