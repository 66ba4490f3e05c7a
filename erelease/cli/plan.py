"""``erelease plan`` and ``erelease apply``: show, then make, the changes."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from erelease.cli.common import Ctx, Progress, duration_option, echo_warnings, format_option
from erelease.engine import Plan, apply, make_plan, run_connection_tests, save_plan
from erelease.engine.planfile import plan_to_dict
from erelease.errors import EXIT_CHANGES, CheckFailed, PlanError
from erelease.model import CheckResult
from erelease.render.data import result_dict
from erelease.render.plan import plan_json, plan_markdown, plan_text
from erelease.render.tables import test_table

log = logging.getLogger("erelease.cli")


def _render(ctx: Ctx, plan: Plan, fmt: str) -> str:
    if fmt == "json":
        return plan_json(plan)
    if fmt == "markdown":
        return plan_markdown(plan)
    return plan_text(plan, ctx.style())


target_option = click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="NAME",
    help="Limit to this connection (repeatable).",
)
rotate_option = click.option(
    "--rotate",
    "rotate",
    multiple=True,
    metavar="NAME",
    help="Mint a new client secret for this incoming connection (repeatable).",
)


@click.command()
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Save the plan (JSON, as --format json prints it) to FILE, for 'erelease apply FILE'.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there are no changes, 2 when there are, 1 on error.",
)
@format_option("text", "json", "markdown")
@target_option
@rotate_option
@click.option(
    "--allow-delete",
    is_flag=True,
    help="Record in the saved plan that its deletes are intended, so applying it deletes.",
)
@click.pass_obj
def plan(
    ctx: Ctx,
    out: Path | None,
    detailed_exitcode: bool,
    fmt: str,
    targets: tuple[str, ...],
    rotate: tuple[str, ...],
    allow_delete: bool,
) -> int:
    """Show the changes apply would make. Reads Vault versions; writes nothing.

    With --out FILE the plan is saved; 'erelease apply FILE' applies exactly
    it, or exits 5 if the registry, the config or a Vault version moved.
    """
    with ctx.workspace() as ws:
        result = make_plan(ws, targets=targets, rotate=rotate, allow_delete=allow_delete)
        echo_warnings(ws)
    log.info(
        "planned stack %s against serial %d: %s",
        result.stack,
        result.serial,
        ", ".join(f"{n} {action}" for action, n in result.summary.items()),
    )
    if out is not None:
        save_plan(result, out)
        log.info("saved the plan to %s", out)
    click.echo(_render(ctx, result, fmt), nl=False)
    if fmt == "text" and result.summary["delete"] and not allow_delete:
        click.echo(
            "Note: apply refuses to delete unless given --allow-delete "
            "(or a plan saved with --allow-delete)."
        )
    if out is not None and fmt == "text":
        click.echo(f"Saved the plan to {out}. Apply it with: erelease apply {out}")
    if detailed_exitcode and result.has_changes:
        return EXIT_CHANGES
    return 0


def _confirm(ctx: Ctx) -> object:
    def ask(result: Plan) -> bool:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            # Asked only when there is something to apply: an unchanged config is
            # a no-op that needs no approval, in a pipeline or on a terminal.
            raise PlanError(
                "refusing to apply without confirmation: there is no terminal to ask on. "
                "Pass --auto-approve, or apply a saved plan (erelease plan --out FILE)"
            )
        click.echo(plan_text(result, ctx.style()), nl=False)
        return click.confirm("Apply these changes?", default=False)

    return ask


@click.command(name="apply")
@click.argument("planfile", required=False, type=click.Path(path_type=Path))
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option(
    "--allow-delete", is_flag=True, help="Allow deleting connections that left the config."
)
@click.option("--no-test", is_flag=True, help="Do not test the connections that changed.")
@duration_option("--lock-timeout", default="0s", help="Wait this long for the stack lock.")
@target_option
@rotate_option
@format_option("text", "json")
@click.pass_obj
def apply_cmd(
    ctx: Ctx,
    planfile: Path | None,
    auto_approve: bool,
    allow_delete: bool,
    no_test: bool,
    lock_timeout: float,
    targets: tuple[str, ...],
    rotate: tuple[str, ...],
    fmt: str,
) -> int:
    """Make the changes, then test what was created, updated or rotated.

    Without --auto-approve or a PLANFILE, asks for confirmation on a terminal
    and refuses to make changes without one (an unchanged config needs no
    approval). Exits 3 if a connectivity test failed.

    --format json prints one object: format_version ("1"), applied (false when
    nothing changed), serial (the registry's serial afterwards), plan (as
    'erelease plan --format json' prints it) and results (as in 'erelease test
    --format json'). Messages go to stderr, so stdout is only that object.
    """
    interactive = planfile is None and not auto_approve
    with ctx.workspace() as ws:

        def tests(addresses: Sequence[str]) -> list[CheckResult]:
            # Called after the commit: the changes are applied whatever happens now.
            log.info("applied; testing %d changed connection(s)", len(addresses))
            progress = Progress(len(addresses), label="testing", enabled=fmt == "text")
            try:
                return run_connection_tests(ws, addresses=addresses, progress=progress)
            except KeyboardInterrupt:
                progress.close()
                click.echo(
                    "erelease: the changes were applied (see 'erelease state history'); "
                    "the tests were interrupted: run 'erelease test' to check connectivity",
                    err=True,
                )
                raise
            finally:
                progress.close()

        if lock_timeout:
            log.info("waiting up to %gs for the lock of stack %s", lock_timeout, ws.stack)

        steps = Progress(0, label="applying", enabled=fmt == "text")
        try:
            result = apply(
                ws,
                on_change=steps.step,
                plan_file=planfile,
                targets=targets,
                rotate=rotate,
                allow_delete=allow_delete,
                lock_timeout=lock_timeout or 0.0,
                confirm=_confirm(ctx) if interactive else None,  # type: ignore[arg-type]
                run_tests=None if no_test else tests,
            )
        finally:
            steps.close()
        echo_warnings(ws)
    failed = [r for r in result.results if not r.ok]
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "format_version": "1",
                    "applied": result.applied,
                    "serial": result.stack_info.serial if result.stack_info else 0,
                    "plan": plan_to_dict(result.plan),
                    "results": [result_dict(r) for r in result.results],
                },
                indent=2,
            )
        )
    else:
        if not result.applied:
            click.echo("No changes. The registry matches the configuration.")
        else:
            if not interactive:
                click.echo(plan_text(result.plan, ctx.style()), nl=False)
            serial = result.stack_info.serial if result.stack_info else 0
            click.echo(f"Applied. Serial {serial}.")
            if result.results:
                click.echo(test_table(result.results, ctx.style()), nl=False)
            elif no_test:
                click.echo("Not tested (--no-test): run 'erelease test' to check connectivity.")
    if failed:
        raise CheckFailed(f"{len(failed)} connectivity test(s) failed after apply")
    return 0


COMMANDS = [plan, apply_cmd]
