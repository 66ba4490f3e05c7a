"""SIGTERM of a real apply, and an apply stopped right after its registry commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import erelease
from erelease.state.postgres import PostgresStore
from erelease.state.sqlite import SQLiteStore
from tests.integration.crash.conftest import District

REPO = Path(erelease.__file__).resolve().parent.parent
DRIVER = REPO / "tests" / "integration" / "concurrency" / "driver.py"


def test_sigterm_of_an_apply_holding_the_lock_unwinds_like_ctrl_c(
    district: District, tmp_path: Path
) -> None:
    """A cancelled CI job sends SIGTERM: one line, exit 130, the lock released at
    once (no stale lock for the next apply to take over), nothing written."""
    for name in ("in1", "in2"):
        district.write_incoming(name)
    before = district.snapshot()
    marker = tmp_path / "marker"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ERELEASE_")}
    environ.update(NO_COLOR="1", PYTHONPATH=str(REPO))
    command = ["-C", str(district.path), "apply", "--auto-approve", "--no-test"]
    holder = subprocess.Popen(
        [sys.executable, str(DRIVER), "hang", str(marker), "--", *command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():  # the driver writes it inside commit, lock held
            assert holder.poll() is None, holder.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert district.state()["lock"] is not None
        holder.send_signal(signal.SIGTERM)
        _out, err = holder.communicate(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(30)
    assert holder.returncode == 130
    assert err.decode().strip().splitlines()[-1:] == ["erelease: interrupted"]
    assert "Traceback" not in err.decode()
    assert district.snapshot() == before
    assert district.state()["lock"] is None

    converged = district.apply()
    assert converged.exit_code == 0 and "stale lock" not in converged.stderr
    district.assert_converged(["in1", "in2"])


def test_stopped_after_committing_a_move_leaves_no_credentials_at_the_old_path(
    district: District, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moving ``credentials`` rotates to the new path and deletes the old secret.
    That delete must not wait until after the commit, where an interruption
    would leave a live client secret in Vault that nothing names any more."""
    for name in ("in1", "in2"):
        district.write_incoming(name)
    assert district.apply().exit_code == 0
    district.write_incoming("in1", credentials=f"{district.prefix}/in1-moved")
    for cls in (SQLiteStore, PostgresStore):
        original = cls.commit

        def commit(self: Any, *, _original: Any = original, **kwargs: Any) -> Any:
            _original(self, **kwargs)
            raise KeyboardInterrupt

        monkeypatch.setattr(cls, "commit", commit)
    stopped = district.apply()
    assert stopped.exit_code == 130, stopped.stderr
    monkeypatch.undo()
    monkeypatch.setenv("BAO_ADDR", district.bao.server.addr)
    monkeypatch.setenv("BAO_TOKEN", district.bao.server.root_token)

    converged = district.apply()
    assert converged.exit_code == 0, converged.stderr
    district.assert_converged(["in1", "in2"])
    assert "in1" not in district.bao.keys(district.prefix)
