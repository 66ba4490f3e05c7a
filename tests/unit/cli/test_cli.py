"""The command line's contract: help everywhere, documented, exit codes, no tracebacks."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from erelease import __version__
from erelease.cli import cli
from erelease.devtools.clidoc import iter_commands, render

ROOT = Path(__file__).resolve().parents[3]
COMMANDS = [" ".join(path) for path, _ in iter_commands()]


def test_the_contract_commands_exist() -> None:
    for name in (
        "validate",
        "plan",
        "apply",
        "test",
        "show",
        "state list",
        "state history",
        "state unlock",
        "serve",
    ):
        assert name in COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_in_the_readme(command: str) -> None:
    result = CliRunner().invoke(cli, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    *_, cmd = [c for path, c in iter_commands() if " ".join(path) == command]
    assert (cmd.help or "").strip(), f"{command} has no help text"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"erelease {command}" in readme or re.search(
        rf"erelease {command.split()[0]} [^\n]*{command.split()[-1]}", readme
    ), f"README does not mention 'erelease {command}'"


def _normal(text: str) -> str:
    # click releases differ in how they bracket an optional choice argument.
    return re.sub(r"\[\[([^\]]*)\]\]", r"[\1]", text)


def test_cli_reference_is_current() -> None:
    checked_in = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert _normal(checked_in) == _normal(render()), "docs/cli.md is stale: run 'make docs'"


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_bad_flag_is_usage_error_64() -> None:
    result = CliRunner().invoke(cli, ["plan", "--no-such-flag"])
    assert result.exit_code == 64
    assert "No such option" in result.output + result.stderr


def test_bad_chdir_is_usage_error_64(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["-C", str(tmp_path / "missing"), "validate"])
    assert result.exit_code == 64 and "no such directory" in result.stderr


def test_unknown_command_is_usage_error_64() -> None:
    assert CliRunner().invoke(cli, ["frobnicate"]).exit_code == 64


def test_an_unexpected_bug_exits_70_with_a_log_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("simulated bug")

    # Our own seam: the config loader the validate command calls.
    monkeypatch.setattr("erelease.cli.validate.load_config", boom)
    result = CliRunner().invoke(cli, ["-C", str(tmp_path), "validate"])
    assert result.exit_code == 70
    assert "Traceback" not in result.output + result.stderr
    logs = list((tmp_path / "state" / "erelease").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in result.stderr
    assert "simulated bug" in logs[0].read_text()
    assert oct(logs[0].stat().st_mode & 0o777) == "0o600"


def test_keyboard_interrupt_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("erelease.cli.validate.load_config", interrupt)
    result = CliRunner().invoke(cli, ["-C", str(tmp_path), "validate"])
    assert result.exit_code == 130 and "interrupted" in result.stderr


def test_validate_an_empty_directory_is_fine(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["-C", str(tmp_path), "validate"])
    assert result.exit_code == 0, result.output + result.stderr


def test_examples_validate() -> None:
    result = CliRunner().invoke(cli, ["-C", str(ROOT), "validate", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert '"valid": true' in result.output


def test_schema_command_prints_and_writes(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["schema", "outgoing"])
    assert result.exit_code == 0 and '"OutgoingConnection"' in result.output
    result = CliRunner().invoke(cli, ["schema", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "incoming-connection.schema.json",
        "outgoing-connection.schema.json",
        "settings.schema.json",
    ]


def test_help_mentions_every_global_option() -> None:
    text = CliRunner().invoke(cli, ["--help"]).output
    for option in ("--chdir", "--state", "--no-color", "--verbose", "--version"):
        assert option in text


def test_groups_are_click_groups() -> None:
    assert isinstance(cli, click.Group)
