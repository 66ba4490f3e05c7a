"""The pre-fork supervisor's small parts: argument checks and how an exit is described."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from erelease.serve import run_server
from erelease.serve._workers import _describe
from erelease.settings import Settings
from erelease.state.sqlite import SQLiteStore


def test_at_least_one_worker(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    try:
        with pytest.raises(ValueError, match="at least 1"):
            run_server(
                settings=Settings(config_dir=tmp_path, stack="s"),
                store=store,
                host="127.0.0.1",
                port=0,
                workers=0,
            )
    finally:
        store.close()


def _status(pid_exit: int | None = None, sig: int | None = None) -> int:
    pid = os.fork()
    if pid == 0:
        if sig is not None:
            os.kill(os.getpid(), sig)
        os._exit(pid_exit or 0)
    return os.waitpid(pid, 0)[1]


def test_exits_are_described_for_an_operator() -> None:
    assert _describe(_status(3)) == "exited with code 3"
    assert _describe(_status(sig=signal.SIGKILL)) == "was killed by SIGKILL"
