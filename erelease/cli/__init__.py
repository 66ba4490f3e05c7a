"""The command line: parse, call one engine function, render, map errors to exit codes.

One handler turns every :class:`~erelease.errors.ErelaseError` into a single
line and its exit code, click usage errors into exit 64, Ctrl-C into 130, and
anything unexpected into exit 70 with the traceback written to a log file
(never to the terminal, where it could carry a value into a CI log).
"""

from __future__ import annotations

import signal
import sys
from typing import Any, NoReturn

import click

from erelease import __version__
from erelease.cli.common import CONTEXT_SETTINGS, Ctx, report_crash, report_error
from erelease.errors import ErelaseError

__all__ = ["cli", "main"]


class ErelaseGroup(click.Group):
    """A click group whose ``main`` applies erelease's exit-code contract."""

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> NoReturn:
        try:
            rv = super().main(
                args=args, prog_name=prog_name or "erelease", standalone_mode=False, **extra
            )
            code = rv if isinstance(rv, int) else 0
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.exceptions.Abort:
            click.echo("erelease: interrupted", err=True)
            code = 130
        except click.ClickException as exc:
            exc.show()
            code = 64 if isinstance(exc, click.UsageError) else 1
        except ErelaseError as exc:
            code = report_error(exc)
        except KeyboardInterrupt:
            click.echo("erelease: interrupted", err=True)
            code = 130
        except BrokenPipeError:
            code = 1
        except Exception as exc:
            code = report_crash(exc)
        sys.exit(code)


@click.group(cls=ErelaseGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "-C",
    "--chdir",
    "config_dir",
    default=".",
    metavar="DIR",
    help="Config directory holding erelease.yaml and connections.d/ (default: .). "
    "File arguments (PATH, --out, PLANFILE) stay relative to the current directory.",
)
@click.option("--state", "state", metavar="URL", help="State store URL (overrides settings).")
@click.option("--no-color", is_flag=True, help="Never colour output (also: NO_COLOR).")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.version_option(__version__, "--version", prog_name="erelease")
@click.pass_context
def cli(
    ctx: click.Context, config_dir: str, state: str | None, no_color: bool, verbose: int
) -> None:
    """Manage eTranscript connections as code.

    Declare outgoing (vendor) and incoming (provider) connections in
    connections.d/, keep secrets in Vault or OpenBao, and reconcile them with
    the registry: validate, plan, apply, test, show, serve.
    """
    ctx.obj = Ctx.create(config_dir=config_dir, state=state, no_color=no_color, verbose=verbose)


def _register() -> None:
    from erelease.cli import inspect, plan, serve, validate

    for module in (validate, plan, inspect, serve):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def _interrupt(_signum: int, _frame: object) -> NoReturn:
    raise KeyboardInterrupt


def main() -> NoReturn:
    """Console-script entry point.

    SIGTERM (a cancelled CI job, ``kill``) ends like Ctrl-C: locks and
    transactions unwind, one line, exit 130, instead of a silent death.
    """
    signal.signal(signal.SIGTERM, _interrupt)
    cli.main()
