"""``erelease serve``, ``erelease disclosures`` and ``erelease schema``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from erelease.cli.common import Ctx
from erelease.errors import UsageError


@click.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, metavar="H", help="Address to listen on."
)
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    metavar="P",
    help="TCP port to listen on.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    metavar="N",
    help="Serving processes sharing the port (one core each).",
)
@click.option(
    "--forwarded-allow-ips",
    metavar="IPS",
    help="Reverse proxies (comma-separated addresses, or '*') whose X-Forwarded-For is "
    "trusted: throttling and the record of disclosures then see the provider's address. "
    "Default: trust none.",
)
@click.pass_obj
def serve(ctx: Ctx, host: str, port: int, workers: int, forwarded_allow_ips: str | None) -> int:
    """Answer the Token URL and eTranscripts URL of incoming connections.

    Reads connections and tokens from the registry, so every replica (and every
    worker) pointed at the same state store sees a delete or a rotation at once.
    """
    from erelease.serve import run_server

    with ctx.workspace() as ws:
        run_server(
            settings=ws.settings,
            store=ws.store,
            host=host,
            port=port,
            workers=workers,
            forwarded_allow_ips=forwarded_allow_ips or None,
        )
    return 0


@click.command()
@click.option("--since", metavar="TIME", help="Only disclosures at or after this ISO 8601 time.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="Output format.",
)
@click.pass_obj
def disclosures(ctx: Ctx, since: str | None, fmt: str) -> int:
    """Export the record of disclosures: every transcript released, to whom, when."""
    from erelease.serve import export_disclosures

    with ctx.workspace() as ws:
        click.echo(
            export_disclosures(store=ws.store, stack=ws.stack, since=since, fmt=fmt), nl=False
        )
    return 0


@click.command()
@click.argument("kind", required=False, type=click.Choice(["outgoing", "incoming", "settings"]))
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write every schema as a file into DIR instead of printing.",
)
@click.pass_obj
def schema(ctx: Ctx, kind: str | None, out: Path | None) -> int:
    """Print (or write) the JSON Schemas, for editors and yaml-language-server."""
    from erelease.config.schemas import SCHEMA_FILES, load_schema

    documents = {SCHEMA_FILES[name]: dict(load_schema(name)) for name in SCHEMA_FILES}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for filename, document in documents.items():
            (out / filename).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            click.echo(str(out / filename))
        return 0
    if kind is None:
        raise UsageError("name a schema (outgoing, incoming or settings) or pass --out DIR")
    [document] = [d for f, d in documents.items() if f.startswith(kind)]
    click.echo(json.dumps(document, indent=2))
    return 0


COMMANDS = [serve, disclosures, schema]
