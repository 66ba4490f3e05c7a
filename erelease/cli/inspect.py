"""``erelease test``, ``erelease show`` and ``erelease state …``: look at what is applied."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import click

from erelease.cli.common import Ctx, Progress, duration_option, format_option
from erelease.engine import run_connection_tests
from erelease.engine.registry import (
    find_record,
    history,
    migrate,
    read_registry,
    reveal_client_secret,
    unlock,
)
from erelease.errors import CheckFailed, UsageError
from erelease.render.data import record_dict, registry_dict, results_payload
from erelease.render.tables import (
    connection_detail,
    history_table,
    registry_tables,
    state_list,
    test_table,
)

log = logging.getLogger("erelease.cli")


@click.command(name="test")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@format_option("text", "json")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    metavar="N",
    help="Tests run at once (default: tests.concurrency, 32).",
)
@duration_option(
    "--timeout",
    default=None,
    positive=True,
    help="Time limit of each test, e.g. 10s, 500ms, 1m (default: tests.timeout, 10s).",
)
@click.pass_obj
def test_cmd(
    ctx: Ctx, names: tuple[str, ...], fmt: str, concurrency: int | None, timeout: float | None
) -> int:
    """Test applied connections: the vendor's token endpoint and upload host,
    or our own Token URL and eTranscripts URL. Exits 3 if any test failed."""
    with ctx.workspace() as ws:
        settings = ws.settings.tests
        if concurrency is not None:
            settings = replace(settings, concurrency=concurrency)
        if timeout is not None:
            settings = replace(settings, timeout=timeout)
        records = read_registry(ws).records
        total = len(names) if names else len(records)
        log.info(
            "testing %s of stack %s: %d at once, %gs per test, %d retries",
            " ".join(names) if names else f"all {total} applied connection(s)",
            ws.stack,
            settings.concurrency,
            settings.timeout,
            settings.retries,
        )
        progress = Progress(total, label="testing", enabled=fmt == "text")
        try:
            results = run_connection_tests(ws, names=names, settings=settings, progress=progress)
        finally:
            progress.close()
    valid = sum(1 for r in results if r.ok)
    if fmt == "json":
        click.echo(json.dumps(results_payload(results), indent=2))
    elif not results:
        click.echo("Nothing to test: no connection is applied yet (run 'erelease apply').")
    else:
        click.echo(test_table(results, ctx.style()), nl=False)
    if valid < len(results):
        raise CheckFailed(f"{len(results) - valid} of {len(results)} connectivity test(s) failed")
    return 0


@click.command()
@click.argument("name", required=False)
@format_option("text", "json")
@click.option("--reveal", is_flag=True, help="Read the client secret from Vault and print it.")
@click.pass_obj
def show(ctx: Ctx, name: str | None, fmt: str, reveal: bool) -> int:
    """Show the registry like the Setup page, or one connection's details and
    its Information to Share (eTranscripts URL, Token URL, Client ID)."""
    if reveal and name is None:
        raise UsageError("--reveal needs the NAME of one incoming connection")
    with ctx.workspace() as ws:
        if name is None:
            view = read_registry(ws)
            if fmt == "json":
                data = registry_dict(ws.stack, view.info, view.records)
                click.echo(json.dumps(data, indent=2))
            else:
                click.echo(registry_tables(view.records, ctx.style()), nl=False)
            return 0
        record = find_record(ws, name)
        secret = reveal_client_secret(ws, record) if reveal else None
    if fmt == "json":
        data = record_dict(record)
        if secret is not None:
            data["outputs"]["clientSecret"] = secret.reveal()
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(connection_detail(record, ctx.style(), revealed=secret), nl=False)
    return 0


@click.group()
def state() -> None:
    """Inspect the registry: rows, apply history, locks; move it to another store."""


@state.command(name="list")
@format_option("text", "json")
@click.pass_obj
def state_list_cmd(ctx: Ctx, fmt: str) -> int:
    """List registry rows of this stack, with lineage, serial and any lock."""
    with ctx.workspace() as ws:
        view = read_registry(ws)
    if fmt == "json":
        data = registry_dict(ws.stack, view.info, view.records, lock=view.lock, with_lock=True)
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(state_list(view.info, view.records, view.lock), nl=False)
    return 0


@state.command(name="history")
@format_option("text", "json")
@click.option(
    "--limit", type=click.IntRange(1), metavar="N", help="Show at most this many applies."
)
@click.pass_obj
def state_history(ctx: Ctx, fmt: str, limit: int | None) -> int:
    """Show the applies that changed something, newest first."""
    with ctx.workspace() as ws:
        entries = history(ws, limit=limit)
    if fmt == "json":
        click.echo(
            json.dumps(
                [
                    {
                        "serial": e.serial,
                        "applied_at": e.applied_at,
                        "actor": e.actor,
                        "git_commit": e.git_commit,
                        "summary": dict(e.summary),
                        "changes": [{"address": a, "action": x} for a, x in e.changes],
                    }
                    for e in entries
                ],
                indent=2,
            )
        )
    else:
        click.echo(history_table(entries), nl=False)
    return 0


@state.command(name="unlock")
@click.argument("lock_id")
@click.pass_obj
def state_unlock(ctx: Ctx, lock_id: str) -> int:
    """Break a stale stack lock by its LOCK_ID (shown when an apply is refused)."""
    with ctx.workspace() as ws:
        info = unlock(ws, lock_id)
    click.echo(f"Released the lock held by {info.describe()}.")
    return 0


@state.command(name="migrate")
@click.option("--to", "to", required=True, metavar="URL", help="Target state store URL.")
@click.pass_obj
def state_migrate(ctx: Ctx, to: str) -> int:
    """Copy this stack (lineage, serial, connections, history) to another store."""
    with ctx.workspace() as ws:
        info = migrate(ws, to=to)
    click.echo(f"Copied stack {info.stack} (serial {info.serial}) and verified the copy.")
    return 0


COMMANDS = [test_cmd, show, state]
