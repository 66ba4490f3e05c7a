"""Plan computation: actions, field diffs, sensitive versions, targets, rotation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from erelease.engine.plan import compute_plan
from erelease.model import Connection, ConnectionRecord, SecretRef, StackInfo, parse_ref

BASE = "https://district.example.org/campus"


@dataclass
class Meta:
    current_version: int | None
    custom_metadata: dict[str, str] = field(default_factory=dict)


class FakeVersions:
    """Our own seam: the plan's view of Vault (versions only)."""

    def __init__(self, versions: Mapping[str, int | None]) -> None:
        self._versions = dict(versions)
        self.value_reads = 0

    def versions(self, refs: Iterable[SecretRef]) -> dict[SecretRef, int | None]:
        return {r: (r.version or self._versions.get(r.location)) for r in refs}

    def metadata(self, ref: SecretRef) -> Any:
        if ref.location not in self._versions:
            return None
        return Meta(self._versions[ref.location])


def outgoing(name: str = "parchment", **overrides: Any) -> Connection:
    spec: dict[str, Any] = {
        "authServer": "https://auth.vendor.example",
        "authPath": "/oauth/token",
        "uploadServer": "https://upload.vendor.example",
        "uploadPort": 443,
        "uploadPath": "/upload",
        "consumerKey": "key-123",
        "consumerSecret": parse_ref(f"ref+vault://secret/erelease/{name}#consumer_secret"),
        "username": "user@vendor.example",
        "password": parse_ref(f"ref+vault://secret/erelease/{name}#password"),
        "grantType": "password",
        "clientAuth": "basic",
        "allowInsecureHttp": False,
    }
    spec.update(overrides)
    return Connection(kind="outgoing", name=name, spec=spec)


def incoming(name: str = "cfnc", rotation: int = 0, **overrides: Any) -> Connection:
    spec: dict[str, Any] = {
        "appName": "intNC",
        "credentials": parse_ref(f"ref+vault://secret/erelease/incoming/{name}", require_key=False),
        "rotation": rotation,
    }
    spec.update(overrides)
    return Connection(kind="incoming", name=name, spec=spec)


def record_of(
    conn: Connection, versions: Mapping[str, int | None], **outputs: Any
) -> ConnectionRecord:
    spec = {k: (v.uri if isinstance(v, SecretRef) else v) for k, v in conn.spec.items()}
    secret_versions = {k: versions.get(v.location) for k, v in conn.refs().items()}
    out: dict[str, Any] = {}
    if conn.kind == "incoming":
        out = {
            "appName": conn.spec["appName"],
            "tokenUrl": f"{BASE}/oauth2/token?appName={conn.spec['appName']}",
            "eTranscriptsUrl": f"{BASE}/api/campus/transcript/eTranscripts",
            "clientId": "AbCdEfGh12345678",
            "credentialsVersion": versions.get(conn.spec["credentials"].location),
        }
    out.update(outputs)
    return ConnectionRecord(
        kind=conn.kind, name=conn.name, spec=spec, secret_versions=secret_versions, outputs=out
    )


def plan_for(
    conns: list[Connection],
    records: list[ConnectionRecord],
    versions: Mapping[str, int | None],
    **kw: Any,
):
    return compute_plan(
        stack="s",
        stack_info=StackInfo(stack="s", lineage="L", serial=3) if records else None,
        connections=conns,
        records=records,
        config_digest="d",
        vault=FakeVersions(versions),
        base_url=BASE,
        **kw,
    )


VERSIONS = {"secret/erelease/parchment": 3, "secret/erelease/incoming/cfnc": 1}


def test_first_plan_creates_everything() -> None:
    plan = plan_for([outgoing(), incoming()], [], VERSIONS)
    assert [(c.address, c.action) for c in plan.changes] == [
        ("incoming/cfnc", "create"),
        ("outgoing/parchment", "create"),
    ]
    assert plan.summary["create"] == 2 and plan.has_changes
    assert plan.serial == 0 and plan.lineage is None
    assert plan.vault_versions == {
        "secret/erelease/incoming/cfnc": 1,
        "secret/erelease/parchment": 3,
    }


def test_unchanged_config_is_noop() -> None:
    conns = [outgoing(), incoming()]
    plan = plan_for(conns, [record_of(c, VERSIONS) for c in conns], VERSIONS)
    assert {c.action for c in plan.changes} == {"noop"}
    assert not plan.has_changes and plan.serial == 3


def test_field_change_is_update_with_diff() -> None:
    old = outgoing(uploadPort=80)
    plan = plan_for([outgoing()], [record_of(old, VERSIONS)], VERSIONS)
    [change] = plan.changes
    assert change.action == "update"
    assert [(d.field, d.before, d.after, d.sensitive) for d in change.diffs] == [
        ("uploadPort", 80, 443, False)
    ]


def test_vault_version_move_is_sensitive_update() -> None:
    conn = outgoing()
    plan = plan_for(
        [conn], [record_of(conn, VERSIONS)], {**VERSIONS, "secret/erelease/parchment": 4}
    )
    [change] = plan.changes
    assert change.action == "update"
    fields = {d.field: d for d in change.diffs}
    assert set(fields) == {"consumerSecret", "password"}
    assert fields["password"].sensitive
    assert fields["password"].before == {"ref": "secret/erelease/parchment#password", "version": 3}
    assert fields["password"].after == {"ref": "secret/erelease/parchment#password", "version": 4}


def test_removed_connection_is_delete_and_rename_is_delete_plus_create() -> None:
    old = outgoing("oldname")
    plan = plan_for([outgoing("newname")], [record_of(old, VERSIONS)], VERSIONS)
    assert [(c.address, c.action) for c in plan.changes] == [
        ("outgoing/newname", "create"),
        ("outgoing/oldname", "delete"),
    ]


@pytest.mark.parametrize(
    ("conn", "kwargs", "versions", "reason"),
    [
        (incoming(rotation=1), {}, VERSIONS, "rotation 0 -> 1"),
        (incoming(), {"rotate": ["incoming/cfnc"]}, VERSIONS, "--rotate"),
        (incoming(), {}, {**VERSIONS, "secret/erelease/incoming/cfnc": 2}, "outside erelease"),
        (incoming(), {}, {"secret/erelease/parchment": 3}, "deleted from Vault"),
    ],
)
def test_rotation_triggers(
    conn: Connection, kwargs: dict[str, Any], versions: Mapping[str, int | None], reason: str
) -> None:
    plan = plan_for([conn], [record_of(incoming(), VERSIONS)], versions, **kwargs)
    [change] = plan.changes
    assert change.action == "rotate"
    assert any(reason in r for r in change.reasons)


def test_base_url_change_updates_derived_outputs_without_rotation() -> None:
    conn = incoming()
    record = record_of(
        conn, VERSIONS, tokenUrl="https://old.example/campus/oauth2/token?appName=intNC"
    )
    plan = plan_for([conn], [record], VERSIONS)
    [change] = plan.changes
    assert change.action == "update"
    assert change.changed_fields == ["tokenUrl"]


def test_target_limits_scope_and_skips_other_deletes() -> None:
    records = [record_of(outgoing("gone"), VERSIONS)]
    plan = plan_for([outgoing(), incoming()], records, VERSIONS, targets=["outgoing/parchment"])
    assert [(c.address, c.action) for c in plan.changes] == [("outgoing/parchment", "create")]


def test_plan_never_contains_a_secret_value(canary: str) -> None:
    plan = plan_for([outgoing(consumerKey="plain-key")], [], VERSIONS)
    assert canary not in repr(plan)


def test_incoming_before_and_after_keep_the_credentials_version() -> None:
    conn = incoming()
    ref = "secret/erelease/incoming/cfnc"
    [noop] = plan_for([conn], [record_of(conn, VERSIONS)], VERSIONS).changes
    assert noop.action == "noop" and noop.diffs == []
    assert noop.before is not None and noop.after is not None
    assert noop.before["credentials"] == noop.after["credentials"] == {"ref": ref, "version": 1}
    moved = {**VERSIONS, ref: 2}
    [drift] = plan_for([conn], [record_of(conn, VERSIONS)], moved).changes
    assert drift.action == "rotate" and drift.diffs == []  # a version move is no field change
    assert drift.before is not None and drift.after is not None
    assert drift.before["credentials"]["version"] == 1
    assert drift.after["credentials"]["version"] is None  # apply mints the next one


def test_a_protected_delete_says_apply_will_refuse() -> None:
    gone = record_of(outgoing("gone"), VERSIONS)
    kept = ConnectionRecord(**{**gone.__dict__, "name": "kept", "protect": True})
    changes = plan_for([], [gone, kept], VERSIONS).changes
    reasons = {c.address: c.reasons for c in changes}
    assert reasons["outgoing/gone"] == []
    assert reasons["outgoing/kept"][0].startswith("protected: apply refuses")
