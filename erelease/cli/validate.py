"""``erelease validate``: schema and semantic checks, every problem at once, no network."""

from __future__ import annotations

import json
from pathlib import Path

import click

from erelease.cli.common import Ctx, format_option
from erelease.config import Diagnostic, load_config
from erelease.errors import ConfigError


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@format_option("text", "json")
@click.pass_obj
def validate(ctx: Ctx, paths: tuple[Path, ...], fmt: str) -> int:
    """Check connection files (or just PATHs) against the schemas and the rules.

    Prints every problem as path:line:col: error: field: message.
    Exits 0 when valid, 1 when any error was found.
    """
    diagnostics: list[Diagnostic] = []
    settings = None
    try:
        settings = ctx.settings()
    except ConfigError as exc:
        diagnostics.extend(exc.diagnostics)
        if not exc.diagnostics:
            raise
    result = load_config(ctx.config_dir, paths=list(paths) or None, settings=settings)
    diagnostics.extend(result.diagnostics)
    errors = [d for d in diagnostics if d.severity == "error"]
    warnings = [d for d in diagnostics if d.severity == "warning"]
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "valid": not errors,
                    "files": len(result.files),
                    "connections": len(result.connections),
                    "errors": len(errors),
                    "warnings": len(warnings),
                    "diagnostics": [d.to_dict() for d in diagnostics],
                },
                indent=2,
            )
        )
    else:
        for diagnostic in diagnostics:
            click.echo(diagnostic.format())
        if errors:
            click.echo(
                f"{len(errors)} error(s), {len(warnings)} warning(s) in "
                f"{len(result.files)} file(s)."
            )
        else:
            click.echo(
                f"Valid: {len(result.connections)} connection(s) in {len(result.files)} file(s)"
                + (f", {len(warnings)} warning(s)." if warnings else ".")
            )
    return 1 if errors else 0


COMMANDS = [validate]
