"""Generate docs/cli.md from the click commands, so the reference cannot drift.

``make docs`` writes it; a test fails when the checked-in file differs.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

from erelease.cli import cli

__all__ = ["iter_commands", "render"]


def iter_commands(
    group: click.Group = cli, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command and sub-command with its full path, sorted by name."""
    for name in sorted(group.commands):
        command = group.commands[name]
        path = (*prefix, name)
        yield path, command
        if isinstance(command, click.Group):
            yield from iter_commands(command, path)


def _help(path: tuple[str, ...], command: click.Command) -> str:
    ctx = click.Context(
        command,
        info_name="erelease " + " ".join(path),
        max_content_width=100,
        terminal_width=100,
        help_option_names=["-h", "--help"],
    )
    return command.get_help(ctx)


def render() -> str:
    root = click.Context(
        cli,
        info_name="erelease",
        max_content_width=100,
        terminal_width=100,
        help_option_names=["-h", "--help"],
    )
    parts = [
        "# erelease command reference",
        "",
        "Generated from the commands by `make docs`; a test keeps it current.",
        "",
        "## erelease",
        "",
        "```",
        cli.get_help(root),
        "```",
        "",
    ]
    for path, command in iter_commands():
        parts += [f"## erelease {' '.join(path)}", "", "```", _help(path, command), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
