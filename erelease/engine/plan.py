"""Compute a plan: the difference between the desired config and the registry.

A plan is a pure value: it reads the config (already validated), the registry
rows and the Vault *versions* of every referenced secret, and says what apply
would do — create, update, delete, rotate or nothing — with a field-level
diff. It never reads a secret value and never writes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, Protocol
from urllib.parse import quote

from erelease.model import (
    INCOMING,
    OUTGOING,
    Connection,
    ConnectionRecord,
    SecretRef,
    StackInfo,
    parse_ref,
)

__all__ = [
    "ACTIONS",
    "Action",
    "Change",
    "FieldDiff",
    "Plan",
    "VersionSource",
    "compute_plan",
    "desired_outputs",
    "record_view",
]

Action = Literal["create", "update", "delete", "rotate", "noop"]
ACTIONS: tuple[Action, ...] = ("create", "update", "delete", "rotate", "noop")

#: Outputs that apply derives from settings and may change without a re-mint.
DERIVED_OUTPUTS = ("appName", "tokenUrl", "eTranscriptsUrl")

#: At most this many metadata reads of incoming credentials run at once (Vault's default).
METADATA_CONCURRENCY = 16


#: SPEC §5.4: the plan says what apply will refuse, so a reviewer sees it too.
_PROTECTED = "protected: apply refuses; set protect: false and apply first"


class VersionSource(Protocol):
    """What a plan needs from Vault: versions (and proof that each ``#key`` exists)."""

    def versions(self, refs: Iterable[SecretRef]) -> Mapping[SecretRef, int | None]: ...

    def metadata(self, ref: SecretRef) -> Any: ...


@dataclass(frozen=True)
class FieldDiff:
    """One changed field. For a secret field the values are reference + version."""

    field: str
    before: Any
    after: Any
    sensitive: bool = False


@dataclass
class Change:
    """What apply will do to one connection."""

    address: str
    kind: str
    name: str
    action: Action
    diffs: list[FieldDiff] = field(default_factory=list)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reasons: list[str] = field(default_factory=list)
    desired: Connection | None = None
    record: ConnectionRecord | None = None

    @property
    def changed_fields(self) -> list[str]:
        return [d.field for d in self.diffs]


@dataclass
class Plan:
    """The whole plan, bound to what it saw: lineage, serial, digest, Vault versions."""

    stack: str
    lineage: str | None
    serial: int
    config_digest: str
    changes: list[Change]
    vault_versions: dict[str, int | None]
    targets: tuple[str, ...] = ()
    rotate: tuple[str, ...] = ()
    allow_delete: bool = False

    @property
    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            counts[change.action] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        return any(c.action != "noop" for c in self.changes)

    def actionable(self) -> list[Change]:
        return [c for c in self.changes if c.action != "noop"]


def _version_key(ref: SecretRef) -> str:
    """``mount/path`` plus a pinned version: the unit a Vault version belongs to."""
    key = ref.location
    if ref.version is not None:
        key += f"?version={ref.version}"
    return key


def desired_outputs(conn: Connection, *, base_url: str) -> dict[str, Any]:
    """The Information to Share that follows from config + settings (SPEC §2.2)."""
    if conn.kind != INCOMING:
        return {}
    app_name = str(conn.spec.get("appName") or conn.name)
    return {
        "appName": app_name,
        "tokenUrl": f"{base_url}/oauth2/token?appName={quote(app_name, safe='')}",
        "eTranscriptsUrl": f"{base_url}/api/campus/transcript/eTranscripts",
    }


@lru_cache(maxsize=4096)
def _shown_ref(uri: str) -> str:
    """How a reference is shown in a plan. Thousands of fields share a few hundred URIs."""
    try:
        return str(parse_ref(uri, require_key=False))
    except ValueError:
        return uri


def _secret_view(uri: str, version: int | None) -> dict[str, Any]:
    return {"ref": _shown_ref(uri), "version": version}


def _desired_view(
    conn: Connection, versions: Mapping[str, int | None], outputs: Mapping[str, Any]
) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for key, value in sorted(conn.spec.items()):
        if isinstance(value, SecretRef):
            view[key] = _secret_view(value.uri, versions.get(key))
        else:
            view[key] = value
    if conn.labels:
        view["labels"] = dict(sorted(conn.labels.items()))
    view["protect"] = conn.protect
    for key in DERIVED_OUTPUTS:
        if key in outputs:
            view[key] = outputs[key]
    return view


def record_view(record: ConnectionRecord) -> dict[str, Any]:
    """A registry row as plan JSON shows it: secrets as reference + version only."""
    view: dict[str, Any] = {}
    for key, value in sorted(record.spec.items()):
        if key in record.secret_versions:
            view[key] = _secret_view(str(value), record.secret_versions.get(key))
        else:
            view[key] = value
    if record.labels:
        view["labels"] = dict(sorted(record.labels.items()))
    view["protect"] = record.protect
    for key in (*DERIVED_OUTPUTS, "clientId"):
        if record.kind == INCOMING and key in record.outputs:
            view[key] = record.outputs[key]
    return view


def _unversioned(view: Mapping[str, Any]) -> dict[str, Any]:
    """``view`` with the credentials' KV version blanked, for comparing incoming rows."""
    out = dict(view)
    if isinstance(out.get("credentials"), dict):
        out["credentials"] = dict(out["credentials"], version=None)
    return out


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[FieldDiff]:
    if before == after:  # the common case of a large plan: nothing changed
        return []
    diffs: list[FieldDiff] = []
    for key in sorted(set(before) | set(after)):
        if key == "clientId":
            continue
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        sensitive = (isinstance(old, dict) and "ref" in old) or (
            isinstance(new, dict) and "ref" in new
        )
        diffs.append(FieldDiff(field=key, before=old, after=new, sensitive=bool(sensitive)))
    return diffs


def compute_plan(
    *,
    stack: str,
    stack_info: StackInfo | None,
    connections: Sequence[Connection],
    records: Sequence[ConnectionRecord],
    config_digest: str,
    vault: VersionSource,
    base_url: str,
    targets: Sequence[str] = (),
    rotate: Sequence[str] = (),
) -> Plan:
    """Compare desired connections with registry rows (SPEC §5.2)."""
    target_set = set(targets)
    rotate_set = set(rotate)

    def in_scope(address: str) -> bool:
        return not target_set or address in target_set

    desired = {c.address: c for c in connections if in_scope(c.address)}
    applied = {r.address: r for r in records}

    # One metadata read per distinct location, for every reference in scope. The
    # references are passed once each: 10,000 connections share a few hundred.
    outgoing_refs = {a: c.refs() for a, c in desired.items() if c.kind == OUTGOING}
    distinct = list(dict.fromkeys(r for refs in outgoing_refs.values() for r in refs.values()))
    resolved = dict(vault.versions(distinct)) if distinct else {}
    vault_versions: dict[str, int | None] = {
        _version_key(ref): version for ref, version in resolved.items()
    }
    credentials = _credentials_metadata(
        vault, [c.spec["credentials"] for c in desired.values() if c.kind == INCOMING]
    )

    changes: list[Change] = []
    for address in sorted(desired):
        conn = desired[address]
        record = applied.get(address)
        field_versions: dict[str, int | None] = {}
        cred_exists = False
        if conn.kind == OUTGOING:
            for key, ref in outgoing_refs[address].items():
                field_versions[key] = resolved.get(ref)
        else:
            meta = credentials[conn.spec["credentials"]].result()
            cred_exists = meta is not None
            cred_version = None if meta is None else meta.current_version
            vault_versions[_version_key(conn.spec["credentials"])] = cred_version
            field_versions["credentials"] = cred_version
        outputs = desired_outputs(conn, base_url=base_url)
        after = _desired_view(conn, field_versions, outputs)
        if record is None:
            changes.append(
                Change(address, conn.kind, conn.name, "create", after=after, desired=conn)
            )
            continue
        before = record_view(record)
        if conn.kind == INCOMING:
            # The credentials version is ours to move: a drift means rotate, not
            # an update, so it stays out of the field diff (but in before/after).
            diffs = _diff(_unversioned(before), _unversioned(after))
        else:
            diffs = _diff(before, after)
        reasons = _rotation_reasons(
            conn, record, cred_exists, field_versions.get("credentials"), rotate_set
        )
        action: Action = "rotate" if reasons else ("update" if diffs else "noop")
        if action == "rotate":
            # apply writes a new version: unknown until then, like a create's
            after["credentials"] = dict(after["credentials"], version=None)
        changes.append(
            Change(
                address,
                conn.kind,
                conn.name,
                action,
                diffs=diffs,
                before=before,
                after=after,
                reasons=reasons,
                desired=conn,
                record=record,
            )
        )
    for address in sorted(set(applied) - set(desired)):
        if not in_scope(address):
            continue
        record = applied[address]
        changes.append(
            Change(
                address,
                record.kind,
                record.name,
                "delete",
                before=record_view(record),
                reasons=[_PROTECTED] if record.protect else [],
                record=record,
            )
        )
    changes.sort(key=lambda c: c.address)
    return Plan(
        stack=stack,
        lineage=stack_info.lineage if stack_info else None,
        serial=stack_info.serial if stack_info else 0,
        config_digest=config_digest,
        changes=changes,
        vault_versions=dict(sorted(vault_versions.items())),
        targets=tuple(sorted(target_set)),
        rotate=tuple(sorted(rotate_set)),
    )


def _credentials_metadata(
    vault: VersionSource, refs: Sequence[SecretRef]
) -> dict[SecretRef, Future[Any]]:
    """The metadata of each incoming ``credentials`` secret, read concurrently.

    One read per distinct reference, at most METADATA_CONCURRENCY at once; a
    failed read keeps its exception in its future, so the plan raises it at the
    connection it belongs to, in address order.
    """
    distinct = list(dict.fromkeys(refs))
    futures: dict[SecretRef, Future[Any]] = {}
    if len(distinct) <= 1:
        for ref in distinct:
            future: Future[Any] = Future()
            try:
                future.set_result(vault.metadata(ref))
            except Exception as exc:
                future.set_exception(exc)
            futures[ref] = future
        return futures
    workers = min(METADATA_CONCURRENCY, len(distinct))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="erelease-plan") as pool:
        for ref in distinct:
            futures[ref] = pool.submit(vault.metadata, ref)
    return futures


def _rotation_reasons(
    conn: Connection,
    record: ConnectionRecord,
    cred_exists: bool,
    cred_version: int | None,
    rotate_set: set[str],
) -> list[str]:
    if conn.kind != INCOMING:
        return []
    reasons: list[str] = []
    if conn.address in rotate_set:
        reasons.append("--rotate")
    old_rotation = int(record.spec.get("rotation", 0) or 0)
    if int(conn.spec.get("rotation", 0) or 0) > old_rotation:
        reasons.append(f"rotation {old_rotation} -> {conn.spec.get('rotation')}")
    if conn.spec["credentials"].uri != record.spec.get("credentials"):
        reasons.append("credentials moved to a new path")
    elif not cred_exists:
        reasons.append("credentials were deleted from Vault outside erelease")
    elif cred_version != record.outputs.get("credentialsVersion"):
        reasons.append(
            f"credentials changed in Vault outside erelease "
            f"(v{record.outputs.get('credentialsVersion')} -> v{cred_version})"
        )
    return reasons
