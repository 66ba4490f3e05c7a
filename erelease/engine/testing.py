"""Connectivity tests of applied connections: registry rows → check targets.

The tests check what is *applied*, not what is in Git: targets come from the
registry, the references it holds are read from Vault as they are now (the
values a transcript sent today would use; or the minted credentials), and
results are stored back as each connection's last test. All the Vault reads
of a run are made up front, concurrently, before the first test starts. A
secret that cannot be read becomes a ``secret_unavailable`` result, not an
error that stops the other tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from urllib.parse import urlsplit

from erelease.checks import IncomingTarget, OutgoingTarget, Unavailable, run_checks
from erelease.engine.workspace import APPLIED, Workspace, resolve_names
from erelease.errors import SecretsError
from erelease.model import INCOMING, CheckResult, ConnectionRecord, Secret, SecretRef, parse_ref
from erelease.settings import TestSettings

__all__ = ["run_connection_tests", "targets_for"]

Target = OutgoingTarget | IncomingTarget | Unavailable


def _ref(value: object) -> SecretRef | None:
    if isinstance(value, str) and value.startswith(("ref+vault://", "ref+openbao://")):
        return parse_ref(value, require_key=False)
    return None


def _outgoing(ws: Workspace, record: ConnectionRecord) -> Target:
    spec = record.spec
    refs = {k: r for k, v in spec.items() if (r := _ref(v)) is not None}
    values = ws.vault.resolve(refs.values()) if refs else {}

    def secret(key: str) -> Secret | None:
        if key in refs:
            return values[refs[key]]
        raw = spec.get(key)
        return None if raw is None else Secret(str(raw))

    def text(key: str) -> str:
        # Any string field may be a reference (SPEC §2.3), servers and paths too.
        value = secret(key)
        return "" if value is None else value.reveal()

    upload = urlsplit(text("uploadServer"))
    consumer_key = secret("consumerKey")
    consumer_secret = secret("consumerSecret")
    assert consumer_key is not None and consumer_secret is not None
    return OutgoingTarget(
        address=record.address,
        name=record.name,
        token_url=text("authServer") + text("authPath"),
        upload_host=upload.hostname or "",
        upload_port=int(spec["uploadPort"]),
        upload_tls=upload.scheme == "https",
        consumer_key=consumer_key,
        consumer_secret=consumer_secret,
        username=secret("username"),
        password=secret("password"),
        grant_type=str(spec.get("grantType", "password")),
        client_auth=str(spec.get("clientAuth", "basic")),
    )


def _incoming(ws: Workspace, record: ConnectionRecord) -> Target:
    ref = parse_ref(str(record.spec["credentials"]), require_key=False)
    data, _version = ws.vault.read_all(ref)
    client_secret = data.get("client_secret")
    if client_secret is None:
        return Unavailable(
            address=record.address,
            kind=record.kind,
            name=record.name,
            message=f"{ref} has no client_secret key",
        )
    return IncomingTarget(
        address=record.address,
        name=record.name,
        token_url=str(record.outputs["tokenUrl"]),
        etranscripts_url=str(record.outputs["eTranscriptsUrl"]),
        client_id=str(record.outputs["clientId"]),
        client_secret=client_secret,
    )


def _prefetch(ws: Workspace, records: Sequence[ConnectionRecord]) -> None:
    """Read every secret the records reference in one concurrent batch.

    The Vault client keeps what it read for the session, so building the
    targets one by one afterwards costs no further round trips (1,000
    connections would otherwise be 1,000 reads in a row). A failure here is
    ignored: the read is made again for its own record, which then reports it.
    """
    refs: list[SecretRef] = []
    with contextlib.suppress(SecretsError, ValueError):
        for record in records:
            if record.kind == INCOMING:
                ref = _ref(record.spec.get("credentials"))
                refs += [replace(ref, key="client_secret")] if ref is not None else []
            else:
                refs += [r for v in record.spec.values() if (r := _ref(v)) is not None and r.key]
        if len(refs) > 1:
            ws.vault.resolve(refs)


def targets_for(ws: Workspace, records: Sequence[ConnectionRecord]) -> list[Target]:
    """One target per record; a Vault failure becomes an Unavailable target."""
    _prefetch(ws, records)
    targets: list[Target] = []
    for record in records:
        try:
            if record.kind == INCOMING:
                targets.append(_incoming(ws, record))
            else:
                targets.append(_outgoing(ws, record))
        except (SecretsError, ValueError) as exc:
            # ValueError: a reference in the registry that no longer parses.
            targets.append(
                Unavailable(
                    address=record.address, kind=record.kind, name=record.name, message=str(exc)
                )
            )
    return targets


def run_connection_tests(
    ws: Workspace,
    *,
    names: Sequence[str] = (),
    addresses: Sequence[str] | None = None,
    settings: TestSettings | None = None,
    progress: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    """Test applied connections (all, or the given NAMEs/addresses); store results."""
    if not ws.has_registry():
        if names:
            resolve_names(names, [], among=APPLIED)  # nothing is applied yet
        return []
    store = ws.store
    records = store.list_connections(stack=ws.stack) if store.read_stack(stack=ws.stack) else []
    if addresses is None:
        known = [r.address for r in records]
        wanted = resolve_names(names, known, among=APPLIED) if names else None
    else:
        wanted = list(addresses)
    chosen = [r for r in records if wanted is None or r.address in wanted]
    if not chosen:
        return []
    results = run_checks(
        targets_for(ws, chosen), settings=settings or ws.settings.tests, progress=progress
    )
    store.record_test_results(stack=ws.stack, results=results)
    return results
