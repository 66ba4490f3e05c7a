"""Minting and handing over the credentials of incoming connections.

Apply writes credentials to Vault *before* it commits the registry (SPEC §5.3),
so what is in Vault may be ahead of the registry after a crash. These
functions decide, per incoming create or rotate, what to write: a fresh Client
ID and Client Secret, the credentials an interrupted apply already wrote for the
same connection (adopted), or nothing at all when the path holds somebody
else's secret (refused). The registry only ever learns the secret's SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Sequence
from typing import Any

from erelease.engine.plan import Change, Plan
from erelease.engine.workspace import Workspace
from erelease.errors import PlanError
from erelease.model import INCOMING, Connection, Secret, SecretRef

__all__ = [
    "MANAGED_BY",
    "digest",
    "mint",
    "mint_client_id",
    "mint_client_secret",
    "released_paths",
]

_ALPHANUMERIC = string.ascii_letters + string.digits
#: The value of the ``managed-by`` mark on every secret erelease writes.
MANAGED_BY = "erelease"


def mint_client_id(taken: set[str]) -> str:
    """16 letters and digits (SPEC §2.2), unique across the stack."""
    while True:
        candidate = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(16))
        if candidate not in taken:
            taken.add(candidate)
            return candidate


def mint_client_secret() -> Secret:
    """384 bits from the OS CSPRNG (SPEC asks for at least 256)."""
    return Secret(secrets.token_urlsafe(48))


def digest(secret: Secret) -> str:
    return hashlib.sha256(secret.reveal().encode()).hexdigest()


def released_paths(changes: Sequence[Change]) -> dict[str, str | None]:
    """Credentials paths given up by a delete → the address that takes them over, if any.

    A rename that keeps its ``credentials`` path is a delete plus a create of
    the same path: the create mints over the deleted connection's secret, and
    the delete must then leave that path alone.
    """
    released: dict[str, str | None] = {
        str(c.record.spec["credentials"]): None
        for c in changes
        if c.action == "delete" and c.record is not None and c.record.spec.get("credentials")
    }
    for change in changes:
        conn = change.desired
        if change.action in ("create", "rotate") and conn is not None and conn.kind == INCOMING:
            uri = conn.spec["credentials"].uri
            if uri in released:
                released[uri] = conn.address
    return released


def mint(
    ws: Workspace,
    plan: Plan,
    change: Change,
    conn: Connection,
    taken: set[str],
    released: dict[str, str | None],
) -> dict[str, Any]:
    """Write new (or adopt crash-left) credentials to Vault; return the outputs."""
    ref: SecretRef = conn.spec["credentials"]
    marks = {
        "managed-by": MANAGED_BY,
        "erelease-stack": plan.stack,
        "erelease-connection": conn.address,
    }
    meta = ws.vault.metadata(ref)
    ours = meta is not None and all(meta.custom_metadata.get(k) == v for k, v in marks.items())
    # The secret of a connection this same apply deletes, at the path it hands over.
    handed_over = (
        meta is not None
        and released.get(ref.uri) == conn.address
        and meta.custom_metadata.get("managed-by") == MANAGED_BY
        and meta.custom_metadata.get("erelease-stack") == plan.stack
    )
    # A create, or a rotate that moves the credentials, claims a path: never one
    # that holds somebody else's secret (a vendor's, another stack's). A rotate in
    # place overwrites what is there — that is how a change made outside erelease
    # is put right.
    old_uri = change.record.spec.get("credentials") if change.record is not None else None
    claims = change.action == "create" or str(old_uri) != ref.uri
    if claims and meta is not None and not handed_over and not ours:
        raise PlanError(
            f"{ref} already holds a secret that erelease did not write for {conn.address}; "
            "choose another credentials path or remove that secret"
        )
    if change.action == "create" and meta is not None and not handed_over:
        # KV v2 marks are written before the data: marks without a version are a
        # create that stopped in between, with nothing to adopt (write with cas=0)
        has_data = meta.kv_version == 1 or bool(meta.current_version)
        adopted = _adopt(ws, ref, taken) if has_data else None
        if adopted is not None:
            return adopted
    old_id = change.record.outputs.get("clientId") if change.record is not None else None
    client_id = str(old_id) if old_id else mint_client_id(taken)
    client_secret = mint_client_secret()
    cas = 0 if meta is None or meta.current_version is None else int(meta.current_version)
    version = ws.vault.write_credentials(
        ref,
        data={"client_id": Secret(client_id), "client_secret": client_secret},
        cas=cas,
        custom_metadata=marks,
    )
    return {
        "clientId": client_id,
        "clientSecretSha256": digest(client_secret),
        "credentials": ref.uri,
        "credentialsVersion": version,
    }


def _adopt(ws: Workspace, ref: SecretRef, taken: set[str]) -> dict[str, Any] | None:
    """Credentials an interrupted apply wrote for this connection: take them over."""
    data, version = ws.vault.read_all(ref)
    client_id = data.get("client_id")
    client_secret = data.get("client_secret")
    if client_id is None or client_secret is None:
        return None
    cid = client_id.reveal()
    if len(cid) != 16 or not cid.isalnum() or cid in taken:
        return None
    taken.add(cid)
    return {
        "clientId": cid,
        "clientSecretSha256": digest(client_secret),
        "credentials": ref.uri,
        "credentialsVersion": version,
    }
