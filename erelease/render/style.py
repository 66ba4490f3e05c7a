"""Terminal styling that switches itself off: colour only on a TTY, never with NO_COLOR."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

import click

__all__ = ["Style", "want_colour"]


def want_colour(
    stream: TextIO | None = None,
    *,
    no_color: bool = False,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Colour when writing to a terminal, unless --no-color or NO_COLOR (no-color.org)."""
    env = os.environ if environ is None else environ
    if no_color or env.get("NO_COLOR", "") != "" or env.get("TERM") == "dumb":
        return False
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


@dataclass(frozen=True)
class Style:
    colour: bool = False

    def paint(self, text: str, colour: str | None) -> str:
        if not self.colour or colour is None:
            return text
        return click.style(text, fg=colour)

    def bold(self, text: str) -> str:
        return click.style(text, bold=True) if self.colour else text

    def dim(self, text: str) -> str:
        return click.style(text, dim=True) if self.colour else text
