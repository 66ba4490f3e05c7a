"""Results and registry rows as plain JSON-ready dicts, for every ``--format json``.

One place decides which keys a machine sees, so ``test``, ``apply``, ``show``
and ``state list`` cannot drift apart. Digests of client secrets are left out:
they are safe but of no use to a reader.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from erelease.model import CheckResult, ConnectionRecord, LockInfo, StackInfo

__all__ = ["record_dict", "registry_dict", "result_dict", "results_payload"]


def result_dict(result: CheckResult) -> dict[str, Any]:
    """The keys of SPEC §5.5: address, kind, name, status, reason, message, duration_ms."""
    return {
        "address": result.address,
        "kind": result.kind,
        "name": result.name,
        "status": result.status,
        "reason": result.reason,
        "message": result.message,
        "duration_ms": result.duration_ms,
    }


def results_payload(results: list[CheckResult]) -> dict[str, Any]:
    """``erelease test --format json``: format_version, results, summary."""
    valid = sum(1 for r in results if r.ok)
    return {
        "format_version": "1",
        "results": [result_dict(r) for r in results],
        "summary": {"valid": valid, "failed": len(results) - valid},
    }


def record_dict(record: ConnectionRecord) -> dict[str, Any]:
    outputs = {k: v for k, v in record.outputs.items() if k != "clientSecretSha256"}
    last = record.last_test
    if last is not None and last.status == "untested":
        last = None  # changed by an apply and not tested since: no result to show
    return {
        "address": record.address,
        "kind": record.kind,
        "name": record.name,
        "spec": record.spec,
        "secret_versions": record.secret_versions,
        "outputs": outputs,
        "labels": record.labels,
        "protect": record.protect,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "last_test": None if last is None else dict(result_dict(last), checked_at=last.checked_at),
    }


def registry_dict(
    stack: str,
    info: StackInfo | None,
    records: list[ConnectionRecord],
    *,
    lock: LockInfo | None = None,
    with_lock: bool = False,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "stack": stack,
        "lineage": info.lineage if info else None,
        "serial": info.serial if info else 0,
    }
    if with_lock:
        data["lock"] = None if lock is None else asdict(lock)
    data["connections"] = [record_dict(r) for r in records]
    return data
