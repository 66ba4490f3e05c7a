"""The CI examples only use commands and flags that exist, so a district can copy them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from erelease.cli import cli

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "examples" / "ci").glob("*.yml"))


def _commands(node: object) -> list[str]:
    """Every shell line of a workflow or pipeline that runs erelease."""
    found: list[str] = []
    if isinstance(node, dict):
        for value in node.values():
            found += _commands(value)
    elif isinstance(node, list):
        for value in node:
            found += _commands(value)
    elif isinstance(node, str):
        for line in node.splitlines():
            if re.match(r"\s*erelease ", line):
                found.append(line.strip())
    return found


def _parse(argv: list[str]) -> None:
    """Parse argv as the erelease CLI would, without running anything."""
    command: click.Command = cli
    ctx = command.make_context("erelease", argv)
    while isinstance(command, click.Group):
        # click keeps the subcommand in _protected_args (8.2+) or protected_args (8.1).
        protected = getattr(ctx, "_protected_args", None)
        if protected is None:
            protected = ctx.protected_args
        rest = [*protected, *ctx.args]
        name, sub, args = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        command = sub
        ctx = sub.make_context(name, args, parent=ctx)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_erelease_line_parses(
    example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.json").write_text("{}", encoding="utf-8")  # the saved plan of the job
    lines = _commands(yaml.safe_load(example.read_text(encoding="utf-8")))
    assert any(line.startswith("erelease plan") for line in lines)
    assert any(line.startswith("erelease apply") for line in lines)
    for line in lines:
        # CI substitutions and redirections are the shell's, not erelease's.
        line = re.sub(r"\$\{\{[^}]*\}\}|\$\{[^}]*\}|\$\([^)]*\)", "", line).split(">")[0]
        argv = shlex.split(line)[1:]
        try:
            _parse(argv)
        except click.UsageError as exc:  # pragma: no cover - the failure message
            pytest.fail(f"{example.name}: '{line.strip()}' does not parse: {exc}")


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_plans_are_posted_as_one_comment(example: Path) -> None:
    text = example.read_text(encoding="utf-8")
    assert "erelease.devtools.prcomment" in text
    assert "--format markdown" in text
