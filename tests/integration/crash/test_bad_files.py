"""Hostile plan files and state paths: one line, exit 1, the registry untouched."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.crash.conftest import District


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Path, Path], None]:
    def write(saved: Path, target: Path) -> None:
        plan = json.loads(saved.read_text(encoding="utf-8"))
        change(plan)
        target.write_text(json.dumps(plan), encoding="utf-8")

    return write


def _text(text: str) -> Callable[[Path, Path], None]:
    return lambda _saved, target: target.write_text(text, encoding="utf-8")


def _fifo(_saved: Path, target: Path) -> None:
    os.mkfifo(target)


def _endless(_saved: Path, target: Path) -> None:
    target.symlink_to("/dev/zero")


HOSTILE = {
    "nested-arrays": _text("[" * 100_000 + "]" * 100_000),
    "nested-objects": _text('{"a":' * 50_000 + "1" + "}" * 50_000),
    "targets-a-string": _edit(lambda p: p["options"].update(targets="incoming/in1")),
    "rotate-not-names": _edit(lambda p: p["options"].update(rotate=[{"a": 1}])),
    "allow-delete-a-string": _edit(lambda p: p["options"].update(allow_delete="false")),
    "serial-a-float": _edit(lambda p: p.update(serial=float(p["serial"]))),
    "serial-negative": _edit(lambda p: p.update(serial=-1)),
    "lineage-a-list": _edit(lambda p: p.update(lineage=["x"])),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_plan_file_is_one_clear_error(
    district: District, tmp_path: Path, name: str
) -> None:
    if district.state_url.startswith("postgresql"):
        pytest.skip("reading the plan file comes before the registry")
    district.write_incoming("in1")
    saved = tmp_path / "plan.json"
    assert district.run("plan", "--out", str(saved)).exit_code == 0
    before = district.snapshot()
    target = tmp_path / f"hostile-{name}.json"
    HOSTILE[name](saved, target)

    result = district.run("apply", "--no-test", str(target))
    assert result.exit_code == 1, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("erelease: error: "), lines
    assert "plan file" in lines[0] and "internal error" not in lines[0]
    assert district.snapshot() == before


@pytest.mark.parametrize("make", [_fifo, _endless], ids=["fifo", "dev-zero"])
def test_a_plan_file_that_never_ends(
    district: District, tmp_path: Path, make: Callable[[Path, Path], None]
) -> None:
    """A FIFO would block and /dev/zero fill memory: refused without reading. In a
    child process with bounded memory and time, so that a regression cannot take
    the test run down with it."""
    if district.state_url.startswith("postgresql"):
        pytest.skip("reading the plan file comes before the registry")
    target = tmp_path / "plan.json"
    make(tmp_path, target)

    def bounded() -> None:  # pragma: no cover - runs in the child
        limit = 2 * 1024**3
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "erelease", "-C", str(district.path), "apply", str(target)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        preexec_fn=bounded,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines() == [
        f"erelease: error: {target} is not a plan file written by 'erelease plan --out' "
        "(not a regular file)"
    ]


@pytest.mark.parametrize("where", ["directory", "device"])
def test_a_state_path_that_is_not_a_file(district: District, tmp_path: Path, where: str) -> None:
    if district.state_url.startswith("postgresql"):
        pytest.skip("a SQLite path")
    path = tmp_path if where == "directory" else Path("/dev/null")
    for command in (("state", "list"), ("plan",), ("apply", "--auto-approve", "--no-test")):
        result = district.run("--state", f"sqlite:///{path}", *command)
        assert result.exit_code == 1, (command, result.stderr)
        assert result.stderr.strip().splitlines() == [
            f"erelease: error: the state file {path} is "
            f"{'a directory' if where == 'directory' else 'not a regular file'}; "
            "name a file for it"
        ]
