"""load_config over several processes: the same result as one, whatever a worker does.

1,200 files — valid, invalid, unparsable, unreadable, multi-document, and
names defined again across every chunk boundary — are loaded with
``ERELEASE_JOBS=1`` and with two and three processes (the per-process minimum
is lowered so that 1,200 files split); the results must be identical. A slow
worker must end up with fewer blocks. A worker that raises, dies, cannot
pickle its result, gets a Ctrl-C or never answers, or one that cannot be
forked at all, must leave the result unchanged, print nothing and be gone
when the call returns.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from erelease.config import ConfigResult, load_config, loader, parallel
from tests.unit.config.conftest import INCOMING, OUTGOING, ConfigDir, set_field

pytestmark = pytest.mark.forks  # see tests/conftest.py

FILES = 1_200
_Work = Callable[[], Any]


def _text(i: int) -> str:
    """The content of file ``i``: mostly valid, with every kind of problem mixed in."""
    if i % 97 == 0:
        return "apiVersion: erelease/v1\nkind: [unclosed\n"  # not YAML
    if i % 89 == 0:
        return set_field(OUTGOING, "uploadPort", "99999").replace("parchment", f"bad-{i}")
    if i % 83 == 0:
        return "- just\n- a list\n"
    if i % 61 == 0:  # two documents, the second one's name defined again in the same file
        first = set_field(INCOMING, "name", f"multi-{i}")
        return f"{first}---\n{first}---\n{set_field(OUTGOING, 'name', f'multi-{i}')}"
    if i % 50 == 7:  # defined again in every chunk: "dup-0" .. "dup-4"
        return set_field(OUTGOING, "name", f"dup-{i % 5}")
    if i % 3 == 0:  # no appName: the default from erelease.yaml applies
        return set_field(INCOMING, "name", f"in-{i}")
    return set_field(OUTGOING, "name", f"out-{i}")


@pytest.fixture(autouse=True)
def single_threaded() -> None:
    """Workers are forked only from a single-threaded process; without this a
    stray thread would quietly turn every test here into a one-process test."""
    assert threading.active_count() == 1, [t.name for t in threading.enumerate()]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config of FILES files in 7 directories (written once for the module)."""
    config = ConfigDir(tmp_path_factory.mktemp("many"))
    config.settings("stack: s\nincoming:\n  appName: intMN\n")
    for i in range(FILES):
        config.write(f"group-{i % 7}/c-{i:04d}.yaml", _text(i))
    broken = config.root / "connections.d" / "group-3" / "c-0600-gone.yaml"
    broken.symlink_to(config.root / "nowhere.yaml")  # listed, but cannot be read
    return config.root


@pytest.fixture(scope="module")
def sequential(root: Path) -> ConfigResult:
    """What one process finds in ``root`` (as the working directory)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("ERELEASE_JOBS", "1")
        return load_config(root)


@pytest.fixture
def many(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``root`` as the working directory, and a per-process minimum of 100 files."""
    monkeypatch.chdir(root)
    monkeypatch.setattr(parallel, "MIN_FILES_PER_JOB", 100)
    return root


def _load(root: Path, monkeypatch: pytest.MonkeyPatch, jobs: int) -> ConfigResult:
    monkeypatch.setenv("ERELEASE_JOBS", str(jobs))
    return load_config(root)


def _same(result: ConfigResult, expected: ConfigResult) -> None:
    assert result.files == expected.files
    assert result.digest == expected.digest
    assert result.diagnostics == expected.diagnostics
    assert result.connections == expected.connections


def _in_workers(
    monkeypatch: pytest.MonkeyPatch,
    behave: Callable[[_Work, Sequence[Any]], Any],
    here: float = 0.005,
) -> None:
    """Make the loader's block function ``behave`` in worker processes.

    Here it works as it did, ``here`` seconds slower per block, so that the
    workers surely claim some blocks.
    """
    parent = os.getpid()
    original: Callable[..., Any] = loader._check_files

    def check_files(files: Sequence[Any], default_app_name: str | None) -> Any:
        if os.getpid() == parent:
            time.sleep(here)
            return original(files, default_app_name)
        return behave(lambda: original(files, default_app_name), files)

    monkeypatch.setattr(loader, "_check_files", check_files)


def _blocks_by_process(pids: Path) -> dict[int, int]:
    return {int(p.name): len(p.read_text()) for p in pids.iterdir()}


def test_any_number_of_processes_gives_the_same_result(
    many: Path, sequential: ConfigResult, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _load(many, monkeypatch, 1) == sequential
    messages = [d.message for d in sequential.diagnostics]
    assert len(sequential.files) == FILES + 1
    assert sum("duplicate" in m for m in messages) > 20
    assert any("cannot be read" in m for m in messages)
    assert any(c.spec.get("appName") == "intMN" for c in sequential.connections)

    pids = tmp_path / "pids"
    pids.mkdir()

    def record(work: _Work, files: Sequence[Any]) -> Any:
        with (pids / str(os.getpid())).open("a") as blocks:
            blocks.write("b")
        return work()

    _in_workers(monkeypatch, record)
    for jobs in (2, 3):
        _same(_load(many, monkeypatch, jobs), sequential)
        assert len(_blocks_by_process(pids)) == jobs - 1  # every worker claimed blocks
        for pid in pids.iterdir():
            pid.unlink()
    assert multiprocessing.active_children() == []


def test_a_slow_worker_gets_fewer_blocks(
    many: Path, sequential: ConfigResult, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()

    def slow(work: _Work, files: Sequence[Any]) -> Any:
        with (pids / str(os.getpid())).open("a") as blocks:
            blocks.write("b")
        time.sleep(0.2)
        return work()

    _in_workers(monkeypatch, slow, here=0.01)
    _same(_load(many, monkeypatch, 2), sequential)
    (worker_blocks,) = _blocks_by_process(pids).values()
    assert 1 <= worker_blocks < parallel._BLOCKS_PER_PROCESS  # of 32: this process did the rest


@pytest.mark.parametrize("failure", ["raises", "dies", "unpicklable", "interrupted"])
def test_a_failed_worker_changes_nothing(
    many: Path,
    sequential: ConfigResult,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    failure: str,
) -> None:
    def fail(work: _Work, files: Sequence[Any]) -> Any:
        if failure == "raises":
            raise RuntimeError("worker failed")
        if failure == "dies":
            os._exit(3)
        if failure == "interrupted":  # Ctrl-C reaches the whole process group
            os.kill(os.getpid(), signal.SIGINT)
            return work()
        return [threading.Lock() for _ in files]

    _in_workers(monkeypatch, fail)
    capfd.readouterr()
    _same(_load(many, monkeypatch, 2), sequential)
    assert capfd.readouterr() == ("", "")
    assert multiprocessing.active_children() == []


def test_a_worker_that_never_answers_is_killed_and_its_blocks_done_here(
    many: Path, sequential: ConfigResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    _in_workers(monkeypatch, lambda work, files: time.sleep(60))
    monkeypatch.setattr(parallel, "_MIN_WAIT", 0.2)
    monkeypatch.setattr(parallel, "_WAIT_FACTOR", 0.0)
    start = time.monotonic()
    _same(_load(many, monkeypatch, 2), sequential)
    assert time.monotonic() - start < 10
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("what", ["fork", "pipe"])
def test_no_fork_no_workers(
    many: Path, sequential: ConfigResult, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    def unavailable(*args: object) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(*((os, "fork") if what == "fork" else (parallel, "_Child")), unavailable)
    _same(_load(many, monkeypatch, 2), sequential)
    assert multiprocessing.active_children() == []


def test_how_many_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 4)
    for value, jobs in [("", 4), ("0", 4), ("many", 4), ("-2", 4), ("1", 1), (" 3 ", 3)]:
        assert parallel.requested_jobs({"ERELEASE_JOBS": value}) == jobs
    assert parallel.requested_jobs({}) == 4

    monkeypatch.delenv("ERELEASE_JOBS", raising=False)
    per_job = parallel.MIN_FILES_PER_JOB
    assert parallel.processes_for(2 * per_job - 1) == 1
    assert parallel.processes_for(2 * per_job) == 2
    assert parallel.processes_for(100 * per_job) == 4
    monkeypatch.setenv("ERELEASE_JOBS", "1")
    assert parallel.processes_for(100 * per_job) == 1

    monkeypatch.delenv("ERELEASE_JOBS")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:  # forking while another thread runs could deadlock the child
        assert parallel.processes_for(100 * per_job) == 1
    finally:
        stop.set()
        other.join()


def test_chunks_are_contiguous_and_even() -> None:
    items = list(range(1_001))
    chunks = parallel._split(items, 3)
    assert [len(c) for c in chunks] == [333, 334, 334]
    assert [x for chunk in chunks for x in chunk] == items


def test_claiming_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = parallel._Blocks(multiprocessing.get_context("fork"), 3)
    assert list(blocks.claims()) == [0, 1, 2]
    assert list(blocks.claims()) == []

    stuck = parallel._Blocks(multiprocessing.get_context("fork"), 3)
    monkeypatch.setattr(parallel, "_LOCK_WAIT", 0.05)
    stuck._lock.acquire()  # as if a worker had died holding it: claim nothing, do not hang
    assert list(stuck.claims()) == []
