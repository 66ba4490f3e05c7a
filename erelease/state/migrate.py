"""Moving a stack between stores (``erelease state migrate --to URL``).

A team outgrowing its SQLite file must be able to move the registry to
PostgreSQL (or back) without losing its lineage — saved plans stay bound to
it — or its history and record of disclosures. The copy is made under both
stacks' locks, so no apply runs mid-copy, and is verified by reading it back
and comparing every value before anyone is told it worked.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from typing import Any

from erelease.errors import StateError
from erelease.model import StackInfo
from erelease.state._common import Holder
from erelease.state.base import StackDump, StateStore

__all__ = ["migrate_stack"]


def _differences(want: StackDump, got: StackDump) -> list[str]:
    found: list[str] = []
    if want.stack != got.stack:
        found.append("lineage/serial")
    have = {r.address: r for r in got.connections}
    for record in want.connections:
        if have.pop(record.address, None) != record:
            found.append(record.address)
    found.extend(sorted(have))
    if want.history != got.history:
        found.append("history")
    if want.disclosures != got.disclosures:
        found.append("disclosures")
    return found


def _locked(store: StateStore, stack: str, timeout: float) -> AbstractContextManager[Any]:
    """The stack lock of ``store`` — unless this very process holds it already
    (a caller that locked the source before asking for the copy)."""
    held = store.current_lock(stack=stack)
    me = Holder.current()
    if held is not None and held.host == me.host and held.pid == me.pid:
        return contextlib.nullcontext()
    return store.acquire_lock(stack=stack, operation="state migrate", timeout=timeout)


def migrate_stack(
    *, source: StateStore, target: StateStore, stack: str, lock_timeout: float = 0.0
) -> StackInfo:
    """Copy ``stack`` from ``source`` to ``target`` and verify it; return its identity there.

    Refuses (StateError) if the target stack exists and is not empty, and
    (StateLocked) if either side's stack is locked by someone else; a lock
    this process already holds is used as it is. Issued tokens are not
    copied: they are short-lived and clients simply ask for new ones.
    """
    if source.url and source.url == target.url:
        raise StateError(f"source and target of the migration are one store ({source.url})")
    with _locked(source, stack, lock_timeout), _locked(target, stack, lock_timeout):
        dump = source.export_stack(stack=stack)
        target.import_stack(dump=dump)
        copy = target.export_stack(stack=stack)
        wrong = _differences(dump, copy)
        if wrong:
            raise StateError(
                f"the copy of stack {stack!r} in {target.url} does not match the source "
                f"({', '.join(wrong[:5])}{' …' if len(wrong) > 5 else ''}); "
                "the source is unchanged, inspect the target before trying again"
            )
    return copy.stack
