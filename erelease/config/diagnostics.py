"""The values validation hands back: one :class:`Diagnostic` per problem, and the result.

Validation never stops at the first problem and never raises for a bad input:
every problem becomes a :class:`Diagnostic` that knows its file, line and
column, so the command line can print them all at once in the
``path:line:col: error: field: message`` form of SPEC §2.4, and the engine can
refuse to plan while any of them is an error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from erelease.errors import ConfigError
from erelease.model import Connection

__all__ = ["ConfigResult", "Diagnostic", "Severity", "display_path", "field_path"]

Severity = Literal["error", "warning"]

_PLAIN_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


def field_path(path: Sequence[str | int]) -> str:
    """``("spec", "uploadPort")`` → ``spec.uploadPort``; ``("a", 0)`` → ``a[0]``.

    A key that is not a plain identifier is quoted: ``labels["team.name"]``.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_SEGMENT.match(part):
            out += f".{part}" if out else part
        else:
            escaped = part.replace("\\", "\\\\").replace('"', '\\"')
            out += f'["{escaped}"]'
    return out


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the working directory when it lies below it, else as given."""
    text = os.fspath(path)
    absolute = os.path.abspath(text)
    cwd = os.getcwd()
    if absolute == cwd:
        return "."
    prefix = cwd.rstrip(os.sep) + os.sep
    if absolute.startswith(prefix):
        return absolute[len(prefix) :].replace(os.sep, "/")
    return text


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in one file, at a 1-based line and column."""

    path: str
    line: int
    col: int
    severity: Severity
    field: str
    message: str

    def format(self) -> str:
        """``connections.d/a.yaml:3:5: error: spec.uploadPort: must be ≤ 65535``."""
        where = f"{self.path}:{self.line}:{self.col}: {self.severity}:"
        if self.field:
            return f"{where} {self.field}: {self.message}"
        return f"{where} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "severity": self.severity,
            "field": self.field,
            "message": self.message,
        }

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path, self.line, self.col, self.field, self.message)

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True)
class ConfigResult:
    """Everything :func:`~erelease.config.load_config` found.

    ``connections`` holds only the documents without errors, sorted by
    ``(kind, name)``; ``diagnostics`` are sorted by path, line and column;
    ``digest`` changes whenever any byte of any config file (or its name) does.
    """

    connections: list[Connection]
    diagnostics: list[Diagnostic]
    files: list[Path]
    digest: str

    @property
    def ok(self) -> bool:
        """True when no diagnostic is an error (warnings are fine)."""
        return not any(d.severity == "error" for d in self.diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    def raise_for_errors(self) -> None:
        """Raise :class:`ConfigError` listing every error, one per line, if there is any."""
        errors = self.errors
        if errors:
            raise ConfigError("\n".join(d.format() for d in errors), diagnostics=errors)
