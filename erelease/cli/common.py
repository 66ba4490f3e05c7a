"""What every command shares: the context object, error reporting, progress, options."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from erelease.config.settings_file import load_settings
from erelease.engine import Workspace
from erelease.errors import EXIT_INTERNAL, ConfigError, ErelaseError, UsageError
from erelease.model import CheckResult
from erelease.render.style import Style, want_colour
from erelease.settings import Settings, parse_duration

__all__ = [
    "CONTEXT_SETTINGS",
    "Ctx",
    "Progress",
    "duration_option",
    "format_option",
    "report_crash",
    "report_error",
]

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Ctx:
    """Global options, as every command receives them."""

    config_dir: Path
    state: str | None
    no_color: bool
    verbose: int

    @classmethod
    def create(cls, *, config_dir: str, state: str | None, no_color: bool, verbose: int) -> Ctx:
        path = Path(config_dir)
        if not path.is_dir():
            raise UsageError(f"-C {config_dir}: no such directory")
        level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
        logging.basicConfig(
            level=level, stream=sys.stderr, format="erelease: %(levelname)s: %(message)s"
        )
        # httpcore's debug trace prints every response header verbatim: a vendor's
        # Set-Cookie, or its echo of the Authorization header it was sent (-vv).
        logging.getLogger("httpcore").setLevel(max(level, logging.INFO))
        return cls(config_dir=path, state=state, no_color=no_color, verbose=verbose)

    def settings(self) -> Settings:
        return load_settings(self.config_dir, state=self.state)

    def workspace(self) -> Workspace:
        ws = Workspace(self.settings())
        log = logging.getLogger("erelease.cli")
        if log.isEnabledFor(logging.INFO):  # -v only: nothing is worked out otherwise
            log.info("%s", ws.describe())
        return ws

    def style(self, *, err: bool = False) -> Style:
        stream = sys.stderr if err else sys.stdout
        return Style(colour=want_colour(stream, no_color=self.no_color))


def echo_warnings(ws: Workspace) -> None:
    """The config's warnings, on stderr (stdout may be a JSON or Markdown document).

    A plan or apply goes ahead despite them, but the admin should see what
    ``validate`` would have said, as Terraform shows its warnings with a plan.
    """
    for diagnostic in ws.config.diagnostics:
        if diagnostic.severity == "warning":
            click.echo(diagnostic.format(), err=True)


def format_option(*choices: str) -> Callable[[F], F]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default=choices[0],
        show_default=True,
        help="Output format.",
    )


def duration_option(
    name: str, *, default: str | None, help: str, positive: bool = False
) -> Callable[[F], F]:
    """A DURATION option (``10s``, ``500ms``, ``1m``); a bad one is a usage error (exit 64).

    ``positive`` refuses zero: a time limit of 0s would fail every test.
    """

    def convert(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
        if value is None:
            return None
        try:
            seconds = parse_duration(value, what=name)
        except UsageError as exc:
            # click already names the option: "Invalid value for '--timeout': ..."
            raise click.BadParameter(exc.message.removeprefix(f"{name}: ")) from None
        if positive and seconds <= 0:
            raise click.BadParameter(f"must be more than 0s, got {value!r}")
        return seconds

    return click.option(
        name, default=default, metavar="DURATION", callback=convert, help=help, show_default=True
    )


def report_error(exc: ErelaseError) -> int:
    """One clear message (plus every config diagnostic) on stderr; return the exit code."""
    if isinstance(exc, ConfigError):
        for diagnostic in exc.diagnostics:
            text = diagnostic.format() if hasattr(diagnostic, "format") else str(diagnostic)
            click.echo(text, err=True)
    click.echo(f"erelease: error: {exc}", err=True)
    return exc.exit_code


def _log_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    path = Path(base) / "erelease"
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path
    except OSError:
        return Path(tempfile.gettempdir())


def report_crash(exc: BaseException) -> int:
    """A bug: traceback to a private log file, one line on stderr, exit 70."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = _log_dir() / f"crash-{stamp}-{os.getpid()}.log"
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        where = str(path)
    except OSError:
        where = "(the log file could not be written)"
    click.echo(
        f"erelease: internal error ({type(exc).__name__}); this is a bug. Details: {where}",
        err=True,
    )
    return EXIT_INTERNAL


class Progress:
    """``tested 12/100`` on a TTY's stderr; silent in CI, in pipes and with --format json."""

    def __init__(self, total: int, *, label: str, enabled: bool) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.label = label
        self.enabled_on_tty = enabled and sys.stderr.isatty()
        self.enabled = self.enabled_on_tty and total > 1

    def __call__(self, result: CheckResult) -> None:
        self.done += 1
        if not result.ok:
            self.failed += 1
        self._draw(f"  {self.failed} failed")

    def step(self, done: int, total: int) -> None:
        """For work counted by the engine (apply): ``done`` of ``total`` so far."""
        self.done, self.total = done, total
        self.enabled = self.enabled_on_tty and total > 1
        self._draw("")

    def _draw(self, tail: str) -> None:
        if self.enabled:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            bar = "#" * filled + "-" * (width - filled)
            sys.stderr.write(f"\r  {self.label} [{bar}] {self.done}/{self.total}{tail}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 70 + "\r")
            sys.stderr.flush()
            self.enabled = False  # cleared once, however many ways out call close()
