"""Read-side operations on the registry: show, state list/history/unlock/migrate, reveal."""

from __future__ import annotations

from dataclasses import dataclass

from erelease.engine.workspace import APPLIED, Workspace, resolve_names
from erelease.errors import PlanError, StateError, UsageError
from erelease.model import (
    INCOMING,
    ConnectionRecord,
    HistoryEntry,
    LockInfo,
    Secret,
    StackInfo,
    parse_ref,
)
from erelease.state import migrate_stack, open_store

__all__ = [
    "RegistryView",
    "find_record",
    "history",
    "migrate",
    "read_registry",
    "reveal_client_secret",
    "unlock",
]


@dataclass(frozen=True)
class RegistryView:
    info: StackInfo | None
    records: list[ConnectionRecord]
    lock: LockInfo | None


def read_registry(ws: Workspace) -> RegistryView:
    if not ws.has_registry():
        return RegistryView(info=None, records=[], lock=None)
    store = ws.store
    info = store.read_stack(stack=ws.stack)
    records = store.list_connections(stack=ws.stack) if info else []
    return RegistryView(info=info, records=records, lock=store.current_lock(stack=ws.stack))


def find_record(ws: Workspace, name: str) -> ConnectionRecord:
    """The registry row NAME names (``show NAME``): applied connections only."""
    view = read_registry(ws)
    [address] = resolve_names([name], [r.address for r in view.records], among=APPLIED)
    for record in view.records:
        if record.address == address:
            return record
    raise UsageError(f"no applied connection named {name!r}")  # pragma: no cover


def reveal_client_secret(ws: Workspace, record: ConnectionRecord) -> Secret:
    """Read the minted client secret from Vault (``show --reveal``)."""
    if record.kind != INCOMING:
        raise UsageError("--reveal shows the client secret of an incoming connection")
    ref = parse_ref(str(record.spec["credentials"]), require_key=False)
    data, _version = ws.vault.read_all(ref)
    secret = data.get("client_secret")
    if secret is None:
        raise PlanError(f"{ref} holds no client_secret; run 'erelease apply' to mint one")
    return secret


def history(ws: Workspace, *, limit: int | None = None) -> list[HistoryEntry]:
    if not ws.has_registry():
        return []
    return ws.store.history(stack=ws.stack, limit=limit)


def unlock(ws: Workspace, lock_id: str) -> LockInfo:
    if not ws.has_registry():
        raise StateError(f"stack {ws.stack!r} is not locked (no lock {lock_id})")
    return ws.store.force_unlock(stack=ws.stack, lock_id=lock_id)


def migrate(ws: Workspace, *, to: str) -> StackInfo:
    """Copy this stack to another store (``state migrate --to URL``)."""
    source = ws.store if ws.has_registry() else None
    if source is None or source.read_stack(stack=ws.stack) is None:
        where = ws.settings.state_url() if source is None else source.url
        raise StateError(f"stack {ws.stack!r} has nothing applied in {where}; nothing to copy")
    # A relative sqlite:/// path means the same as in `state:`: relative to the config dir.
    with open_store(to, base_dir=ws.settings.config_dir) as target:
        return migrate_stack(source=source, target=target, stack=ws.stack)
