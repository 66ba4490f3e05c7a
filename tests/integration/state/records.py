"""Connection records and commits for the store tests."""

from __future__ import annotations

from typing import Any

from erelease.model import ConnectionRecord, StackInfo
from erelease.state import StateStore


def outgoing(name: str, **spec: Any) -> ConnectionRecord:
    return ConnectionRecord(
        kind="outgoing",
        name=name,
        spec={
            "authServer": "https://auth.vendor.example",
            "authPath": "/oauth/token",
            "uploadPort": 443,
            "password": "ref+vault://secret/erelease/x#password",
            **spec,
        },
        secret_versions={"password": 3},
        labels={"vendor": "example"},
    )


def incoming(name: str, client_id: str, digest: str = "d" * 64) -> ConnectionRecord:
    return ConnectionRecord(
        kind="incoming",
        name=name,
        spec={"credentials": f"ref+vault://secret/erelease/incoming/{name}"},
        secret_versions={"credentials": 1},
        outputs={
            "clientId": client_id,
            "clientSecretSha256": digest,
            "tokenUrl": "http://127.0.0.1:8080/campus/oauth2/token?appName=x",
        },
    )


def commit(
    store: StateStore,
    stack: str,
    upserts: list[ConnectionRecord] | None = None,
    deletes: list[tuple[str, str]] | None = None,
    *,
    expected: int | None = None,
) -> StackInfo:
    """Commit at the stack's current serial (or ``expected``)."""
    if expected is None:
        info = store.read_stack(stack=stack)
        expected = info.serial if info else 0
    upserts = upserts or []
    deletes = deletes or []
    changes = [(r.address, "create") for r in upserts] + [
        (f"{k}/{n}", "delete") for k, n in deletes
    ]
    return store.commit(
        stack=stack,
        expected_serial=expected,
        upserts=upserts,
        deletes=deletes,
        actor="tester",
        git_commit="abc123",
        summary={"create": len(upserts), "delete": len(deletes)},
        changes=changes,
    )
