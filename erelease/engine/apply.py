"""Apply a plan: Vault first, then one registry transaction, then tests.

Ordering is what makes a crash harmless (SPEC §5.3):

1. take the stack lock and re-plan (or prove a saved plan is still current);
2. refuse deletes without ``--allow-delete`` and deletes of protected rows;
3. write minted incoming credentials to Vault with check-and-set, and delete
   the credentials of deleted incoming connections (and those left at the old
   path of moved ones);
4. commit every registry change in one transaction (serial + 1, history row);
5. mark what changed "not yet tested" (an old result describes old settings),
   then, unless ``--no-test``, test it.

A crash after 3 and before 4 leaves Vault ahead of the registry. The next plan
sees it and converges: a created connection finds credentials that erelease
wrote for it (custom metadata says so, written before the data) and adopts
them; a rotated one sees a Vault version the registry does not know and
rotates again; a deleted or moved one finds its credentials gone and deletes
or moves again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erelease.engine.credentials import mint, released_paths
from erelease.engine.plan import Change, Plan, compute_plan, desired_outputs
from erelease.engine.planfile import check_current, load_plan
from erelease.engine.workspace import Workspace, actor_name, git_commit, known_addresses
from erelease.engine.workspace import resolve_names as _resolve
from erelease.errors import DeletionRefused, PlanError, StateError, UsageError
from erelease.gcpause import collector_paused
from erelease.model import (
    INCOMING,
    CheckResult,
    Connection,
    ConnectionRecord,
    SecretRef,
    StackInfo,
    parse_ref,
)

__all__ = ["ApplyResult", "apply", "make_plan"]

log = logging.getLogger(__name__)


@dataclass
class ApplyResult:
    plan: Plan
    applied: bool
    stack_info: StackInfo | None = None
    results: list[CheckResult] = field(default_factory=list)


def make_plan(
    ws: Workspace,
    *,
    targets: Sequence[str] = (),
    rotate: Sequence[str] = (),
    allow_delete: bool = False,
) -> Plan:
    """Plan against the registry as it is now (no lock: plans never write)."""
    ws.config  # noqa: B018 - raise on an invalid config before opening the registry
    stack_info: StackInfo | None = None
    records: list[ConnectionRecord] = []
    with collector_paused():
        if ws.has_registry():
            store = ws.store
            stack_info = store.read_stack(stack=ws.stack)
            records = store.list_connections(stack=ws.stack) if stack_info else []
        result = _plan(
            ws, config_records=records, stack_info=stack_info, targets=targets, rotate=rotate
        )
    result.allow_delete = allow_delete
    return result


def _plan(
    ws: Workspace,
    *,
    config_records: Sequence[ConnectionRecord],
    stack_info: StackInfo | None,
    targets: Sequence[str],
    rotate: Sequence[str],
) -> Plan:
    # NAMEs are resolved against every address; without any, skip building that list.
    known = known_addresses(ws, config_records) if targets or rotate else []
    target_addresses = _resolve(targets, known)
    rotate_addresses = _resolve(rotate, known)
    _check_rotate(ws, rotate_addresses, target_addresses)
    return compute_plan(
        stack=ws.stack,
        stack_info=stack_info,
        connections=ws.config.connections,
        records=config_records,
        config_digest=ws.config.digest,
        vault=ws.vault,
        base_url=ws.settings.base_url,
        targets=target_addresses,
        rotate=rotate_addresses,
    )


def _check_rotate(ws: Workspace, rotate: Sequence[str], targets: Sequence[str]) -> None:
    """A --rotate that would do nothing is a mistake worth saying, not ignoring."""
    desired = {c.address for c in ws.config.connections}
    for address in rotate:
        if not address.startswith(f"{INCOMING}/"):
            raise UsageError(
                f"--rotate {address}: only incoming connections have a client secret to rotate"
            )
        if address not in desired:
            raise UsageError(
                f"--rotate {address}: it has left the configuration, so apply deletes it"
            )
        if targets and address not in targets:
            raise UsageError(
                f"--rotate {address} is outside the --target list; add --target {address}"
            )


def check_deletions(plan: Plan, *, allow_delete: bool) -> None:
    """SPEC §5.4: protected rows are never deleted; others need --allow-delete."""
    deletes = [c for c in plan.changes if c.action == "delete"]
    protected = [c.address for c in deletes if c.record is not None and c.record.protect]
    if protected:
        raise DeletionRefused(
            f"refusing to delete protected connection(s) {', '.join(protected)}: "
            "set protect: false and apply first, then delete in a later apply"
        )
    if deletes and not allow_delete:
        raise DeletionRefused(
            f"the plan deletes {', '.join(c.address for c in deletes)}; nothing was changed. "
            "Re-run with --allow-delete to delete"
        )


def apply(
    ws: Workspace,
    *,
    plan_file: Path | None = None,
    targets: Sequence[str] = (),
    rotate: Sequence[str] = (),
    allow_delete: bool = False,
    lock_timeout: float = 0.0,
    confirm: Callable[[Plan], bool] | None = None,
    run_tests: Callable[[Sequence[str]], list[CheckResult]] | None = None,
    on_change: Callable[[int, int], None] | None = None,
) -> ApplyResult:
    """Reconcile the registry (and Vault credentials) with the config."""
    saved = load_plan(plan_file) if plan_file is not None else None
    if saved is not None:
        if targets or rotate:
            raise UsageError("--target and --rotate come from the saved plan; do not repeat them")
        targets, rotate = saved.targets, saved.rotate
        allow_delete = allow_delete or saved.allow_delete
    config = ws.config  # raise on an invalid config before taking the lock
    store = ws.store
    with store.acquire_lock(stack=ws.stack, operation="apply", timeout=lock_timeout):
        with collector_paused():
            stack_info = store.read_stack(stack=ws.stack)
            records = store.list_connections(stack=ws.stack) if stack_info else []
            plan = _plan(
                ws, config_records=records, stack_info=stack_info, targets=targets, rotate=rotate
            )
        if saved is not None:
            check_current(saved, plan)
        check_deletions(plan, allow_delete=allow_delete)
        if not plan.has_changes:
            return ApplyResult(plan=plan, applied=False, stack_info=stack_info)
        if confirm is not None and not confirm(plan):
            raise PlanError("apply cancelled; nothing was changed")
        if stack_info is None:
            stack_info = store.init_stack(stack=ws.stack)
        upserts, deletes, cleanup = _execute(ws, plan, records, on_change=on_change)
        # Credentials left at a path the registry is about to forget go before the
        # commit, like a delete's: after it, a crash would leave them behind for good,
        # while before it the next plan still sees the old path and moves again.
        for ref in cleanup:
            ws.vault.delete_all(ref)
        new_info = store.commit(
            stack=ws.stack,
            expected_serial=plan.serial,
            upserts=upserts,
            deletes=deletes,
            actor=actor_name(ws.environ),
            git_commit=git_commit(
                config.files[0].parent if config.files else ws.settings.config_dir
            ),
            summary={k: v for k, v in plan.summary.items() if k != "noop"},
            changes=[(c.address, c.action) for c in plan.actionable()],
        )
        if upserts:
            # A last test of the old settings says nothing about the new ones.
            try:
                store.record_test_results(stack=ws.stack, results=[_untested(r) for r in upserts])
            except StateError as exc:  # the apply itself is committed: say so, go on
                log.warning("could not mark the changed connections untested: %s", exc)
    tested = [c.address for c in plan.actionable() if c.action in ("create", "update", "rotate")]
    results = run_tests(tested) if run_tests is not None and tested else []
    return ApplyResult(plan=plan, applied=True, stack_info=new_info, results=results)


def _untested(record: ConnectionRecord) -> CheckResult:
    return CheckResult(
        address=record.address,
        kind=record.kind,
        name=record.name,
        status="untested",
        reason="untested",
        message="not yet tested since it was applied",
        duration_ms=0,
    )


def _execute(
    ws: Workspace,
    plan: Plan,
    records: Sequence[ConnectionRecord],
    *,
    on_change: Callable[[int, int], None] | None = None,
) -> tuple[list[ConnectionRecord], list[tuple[str, str]], list[SecretRef]]:
    """Make the Vault side effects; return registry upserts, deletes and late cleanups."""
    taken = {str(r.outputs.get("clientId")) for r in records if r.outputs.get("clientId")}
    upserts: list[ConnectionRecord] = []
    deletes: list[tuple[str, str]] = []
    cleanup: list[SecretRef] = []
    actionable = plan.actionable()
    released = released_paths(actionable)
    for done, change in enumerate(actionable):
        if on_change is not None:
            on_change(done, len(actionable))  # progress: done so far, of how many
        if change.action == "delete":
            record = change.record
            assert record is not None
            uri = record.spec.get("credentials")
            if record.kind == INCOMING and uri and released.get(str(uri)) is None:
                # Vault first: if we crash before the commit, the next plan sees
                # the credentials gone and deletes again (idempotent).
                ws.vault.delete_all(parse_ref(str(uri), require_key=False))
            deletes.append((record.kind, record.name))
            continue
        conn = change.desired
        assert conn is not None
        upserts.append(_record_for(ws, plan, change, conn, taken, cleanup, released))
    return upserts, deletes, cleanup


def _record_for(
    ws: Workspace,
    plan: Plan,
    change: Change,
    conn: Connection,
    taken: set[str],
    cleanup: list[SecretRef],
    released: dict[str, str | None],
) -> ConnectionRecord:
    old = change.record
    spec: dict[str, Any] = {
        k: (v.uri if isinstance(v, SecretRef) else v) for k, v in conn.spec.items()
    }
    versions: dict[str, int | None] = {}
    outputs: dict[str, Any]
    if conn.kind == INCOMING:
        outputs = dict(old.outputs) if old is not None else {}
        outputs.update(desired_outputs(conn, base_url=ws.settings.base_url))
        if change.action in ("create", "rotate"):
            outputs.update(mint(ws, plan, change, conn, taken, released))
            old_uri = old.spec.get("credentials") if old is not None else None
            if old_uri and old_uri != conn.spec["credentials"].uri:
                cleanup.append(parse_ref(str(old_uri), require_key=False))
        versions["credentials"] = outputs.get("credentialsVersion")
    else:
        server, path = conn.spec["authServer"], conn.spec["authPath"]
        plain = not isinstance(server, SecretRef) and not isinstance(path, SecretRef)
        outputs = {"tokenUrl": f"{server}{path}"} if plain else {}
        for key, value in (change.after or {}).items():
            if isinstance(value, dict) and "ref" in value:
                versions[key] = value.get("version")
    return ConnectionRecord(
        kind=conn.kind,
        name=conn.name,
        spec=spec,
        secret_versions=versions,
        outputs=outputs,
        labels=dict(conn.labels),
        protect=conn.protect,
        # the store stamps both times of its commit (created_at only for a new row)
        created_at=old.created_at if old is not None else "",
    )
