"""Usage errors exit 64 with one clear line; JSON outputs carry their format version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from erelease.cli import cli


@pytest.mark.parametrize(
    "args",
    [
        ["test", "--timeout", "0s"],
        ["test", "--timeout", "0"],
        ["test", "--timeout", "-1s"],
        ["test", "--timeout", "5x"],
        ["test", "--concurrency", "0"],
        ["apply", "--lock-timeout", "5x"],
        ["state", "history", "--limit", "0"],
    ],
)
def test_bad_values_are_usage_errors(tmp_path: Path, args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["-C", str(tmp_path), *args])
    assert result.exit_code == 64, result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("Error:")]
    option = next(a for a in args if a.startswith("--"))
    assert line.count(option) == 1, line  # named once, by click, not repeated


def test_a_zero_time_limit_is_refused_as_a_flag_not_as_a_setting(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["-C", str(tmp_path), "test", "--timeout", "0s"])
    assert "Invalid value for '--timeout': must be more than 0s" in result.stderr
    assert "tests.timeout" not in result.stderr


@pytest.mark.parametrize("timeout", ["10s", "500ms", "1m", "1.5", "1m30s"])
def test_duration_forms_are_accepted(tmp_path: Path, timeout: str) -> None:
    result = CliRunner().invoke(
        cli, ["-C", str(tmp_path), "test", "--timeout", timeout, "--format", "json"]
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "format_version": "1",
        "results": [],
        "summary": {"valid": 0, "failed": 0},
    }


def test_apply_json_has_a_format_version(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["-C", str(tmp_path), "apply", "--auto-approve", "--format", "json"]
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert list(document) == ["format_version", "applied", "serial", "plan", "results"]
    assert document["format_version"] == "1" and document["applied"] is False
    assert document["plan"]["format_version"] == "1"
