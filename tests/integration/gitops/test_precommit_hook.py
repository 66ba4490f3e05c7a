"""The pre-commit hook definition works: its entry as pre-commit runs it, on good and bad input."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def hook() -> dict[str, object]:
    [definition] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    return dict(definition)


def run_hook(repo: Path) -> subprocess.CompletedProcess[str]:
    entry = shlex.split(str(hook()["entry"]))
    assert entry[0] == "erelease"
    # pre-commit runs the entry in the repository root with the hook's files filter.
    return subprocess.run(
        [sys.executable, "-m", "erelease", *entry[1:]],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )


def test_hook_matches_connection_files() -> None:
    pattern = re.compile(str(hook()["files"]))
    assert pattern.search("connections.d/parchment.yaml")
    assert pattern.search("connections.d/vendors/nsc.yml")
    assert pattern.search("erelease.yaml")
    assert not pattern.search("README.md")


def test_hook_passes_good_files_and_fails_bad_ones(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "connections.d", repo / "connections.d")
    good = run_hook(repo)
    assert good.returncode == 0, good.stdout + good.stderr
    (repo / "connections.d" / "broken.yaml").write_text(
        "apiVersion: erelease/v1\nkind: OutgoingConnection\nmetadata:\n  name: Not_Valid\n",
        encoding="utf-8",
    )
    bad = run_hook(repo)
    assert bad.returncode == 1
    assert "connections.d/broken.yaml:4:" in bad.stdout
    assert "Traceback" not in bad.stderr
