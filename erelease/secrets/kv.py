"""The KV secrets engine, versions 1 and 2, behind one set of operations.

A reference names a *logical* path (``secret/erelease/parchment``); KV v2
serves it under ``<mount>/data/…`` and ``<mount>/metadata/…``, KV v1 directly
under ``<mount>/…``. Which one a mount is comes from
``sys/internal/ui/mounts/<mount>``, which any token with some access under the
mount may read (no ``sys/mounts`` privilege needed); the answer is cached per
mount for the life of the session.

KV v1 has no versions, no metadata and no check-and-set. Reads report version
``None``. The custom metadata that marks credentials as erelease's is kept in
the secret itself, as one extra key (:data:`V1_METADATA_KEY`, a JSON object),
which reads strip from the values again. A write over an existing secret is
allowed only when that secret carries the same marks (erelease wrote it for
the same connection: a rotation, or the retry of an interrupted apply);
anything else is refused as a conflict. The check is a read just before the
write — it narrows the race, it cannot close it (the stack lock is what keeps
two applies apart). KV v2 is what erelease is built for.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from erelease.errors import CasConflict, SecretsError
from erelease.model import Secret
from erelease.secrets.transport import Reply, Target, Transport

__all__ = ["KV", "V1_METADATA_KEY", "Values", "check_version"]

_FRACTION = re.compile(r"\.(\d+)")

#: KV v1 only: the data key holding a secret's custom metadata (v1 has no metadata).
V1_METADATA_KEY = "erelease-metadata"


@dataclass(frozen=True)
class Values:
    """One read of a secret: its values (wrapped) and the KV version they came from."""

    values: Mapping[str, Secret]
    version: int | None
    #: KV v1 only: the marks erelease stored in the secret (see V1_METADATA_KEY)
    custom_metadata: Mapping[str, str] = field(default_factory=dict)


def _wrap(value: object) -> Secret:
    if isinstance(value, str):
        return Secret(value)
    if value is None:
        return Secret("")
    # Numbers, booleans and nested objects arrive as JSON; keep them as their JSON text.
    return Secret(json.dumps(value, separators=(",", ":"), sort_keys=True))


def _past(timestamp: str) -> bool:
    """True if an RFC 3339 ``deletion_time`` has passed (future: scheduled, still readable)."""
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), timestamp.strip())
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return True
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when <= datetime.now(UTC)


def _gone(location: str, version: int, info: Mapping[str, Any], where: str) -> str | None:
    """Why ``version`` cannot be read (deleted/destroyed), or None if it can."""
    mount, path = location.split("/", 1)
    if info.get("destroyed") is True:
        return (
            f"version {version} of secret {location} was destroyed in {where} and cannot be "
            "restored; reference another version"
        )
    deletion = info.get("deletion_time")
    if isinstance(deletion, str) and deletion and _past(deletion):
        return (
            f"version {version} of secret {location} was deleted in {where} (restore it with "
            f"`bao kv undelete -mount={mount} -versions={version} {path}`, or write a new "
            "version)"
        )
    return None


def check_version(
    location: str, metadata: Mapping[str, Any], pinned: int | None, where: str
) -> int:
    """The readable version a reference resolves to, from KV v2 metadata (no values)."""
    current = metadata.get("current_version")
    current = current if isinstance(current, int) else 0
    versions = metadata.get("versions")
    versions = versions if isinstance(versions, Mapping) else {}
    version = pinned if pinned is not None else current
    if version == 0:
        raise SecretsError(f"secret {location} has no versions in {where}")
    info = versions.get(str(version))
    if not isinstance(info, Mapping):
        if version > current:
            raise SecretsError(
                f"version {version} of secret {location} does not exist in {where} "
                f"(the current version is {current})"
            )
        raise SecretsError(
            f"version {version} of secret {location} no longer exists in {where} "
            "(older versions are pruned by max_versions)"
        )
    reason = _gone(location, version, info, where)
    if reason is not None:
        raise SecretsError(reason)
    return version


def _v1_marks(raw: object) -> dict[str, str]:
    """The custom metadata erelease kept in a KV v1 secret; empty if absent or mangled."""
    if not isinstance(raw, str):
        return {}
    try:
        marks = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(marks, dict):
        return {}
    return {str(k): str(v) for k, v in marks.items()}


def _not_found(location: str, where: str) -> SecretsError:
    mount, path = location.split("/", 1)
    return SecretsError(
        f"secret {location} not found in {where} "
        f"(write it with `bao kv put -mount={mount} {path} KEY=VALUE`)"
    )


class KV:
    """KV v1/v2 operations through one :class:`Transport`; mount versions cached."""

    def __init__(self, transport: Transport, *, on_data_read: Callable[[], None]) -> None:
        self._t = transport
        self._on_data_read = on_data_read
        self._mounts: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return self._t.where

    def kv_version(self, mount: str) -> int:
        """1 or 2; SecretsError if nothing (or no KV engine) is mounted there."""
        with self._lock:
            if mount not in self._mounts:
                self._mounts[mount] = self._detect(mount)
            return self._mounts[mount]

    def _detect(self, mount: str) -> int:
        reply = self._t.request(
            "get",
            f"sys/internal/ui/mounts/{quote(mount)}",
            target=Target("look up", f"the secrets engine at {mount}/"),
            accept=(400, 401, 403, 404),
        )
        if reply.status in (401, 403) and not self._t.token_is_valid():
            raise self._t.invalid_token()
        if reply.status >= 400:
            raise SecretsError(
                f"no secrets engine is mounted at {mount}/ in {self.where}, or the policies "
                f"of the token from {self._t.token_source} grant nothing under it"
            )
        kind = reply.data.get("type")
        if kind == "generic":
            return 1
        if kind != "kv":
            raise SecretsError(
                f"{mount}/ in {self.where} is a {kind!r} secrets engine, not KV; "
                "references must point into a KV mount"
            )
        options = reply.data.get("options")
        version = options.get("version") if isinstance(options, Mapping) else None
        return 2 if str(version) == "2" else 1

    # -- reads -------------------------------------------------------------------

    def read(self, mount: str, path: str, version: int | None) -> Values:
        """The values at ``mount/path`` (a pinned ``version`` on KV v2); never None."""
        found = self.find(mount, path, version)
        if found is None:
            location = f"{mount}/{path}"
            if version is not None:
                raise SecretsError(
                    f"version {version} of secret {location} not found in {self.where}"
                )
            raise _not_found(location, self.where)
        return found

    def find(self, mount: str, path: str, version: int | None) -> Values | None:
        """Like :meth:`read`, but None when nothing at all is stored at the path."""
        location = f"{mount}/{path}"
        label = f"secret {location}" + (f" (version {version})" if version else "")
        if self.kv_version(mount) == 1:
            if version is not None:
                raise SecretsError(
                    f"{mount}/ in {self.where} is a KV version 1 mount, which keeps no "
                    f"versions; remove ?version={version} from the reference to {location}"
                )
            reply = self._get(f"{quote(mount)}/{quote(path)}", label)
            if reply.status == 404:
                return None
            data = dict(reply.data)
            marks = _v1_marks(data.pop(V1_METADATA_KEY, None))
            return Values({k: _wrap(v) for k, v in data.items()}, None, marks)
        params = {"version": str(version)} if version is not None else None
        reply = self._get(f"{quote(mount)}/data/{quote(path)}", label, params=params)
        meta = reply.data.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        values = reply.data.get("data")
        if reply.status == 404 or not isinstance(values, Mapping):
            number = meta.get("version")
            if isinstance(number, int) and number > 0:
                reason = _gone(location, number, meta, self.where)
                raise SecretsError(reason or f"version {number} of {location} holds no data")
            return None
        number = meta.get("version")
        return Values(
            {k: _wrap(v) for k, v in values.items()},
            number if isinstance(number, int) else version,
        )

    def _get(self, api_path: str, label: str, *, params: Any = None) -> Reply:
        self._on_data_read()
        target = Target("read", label)
        return self._t.request("get", api_path, target=target, params=params, accept=(404,))

    def metadata(self, mount: str, path: str) -> Mapping[str, Any] | None:
        """KV v2 metadata of ``mount/path`` (no values), or None if there is none."""
        reply = self._t.request(
            "get",
            f"{quote(mount)}/metadata/{quote(path)}",
            target=Target("read the metadata of", f"secret {mount}/{path}"),
            accept=(404,),
        )
        return None if reply.status == 404 else reply.data

    # -- writes ------------------------------------------------------------------

    def write(
        self,
        mount: str,
        path: str,
        data: Mapping[str, Secret],
        *,
        cas: int,
        custom_metadata: Mapping[str, str],
    ) -> int | None:
        """Write ``data``; KV v2 with check-and-set ``cas``, then its custom metadata."""
        location = f"{mount}/{path}"
        conflict = f"secret {location} changed concurrently; re-run plan"
        plain = {k: v.reveal() for k, v in data.items()}
        if self.kv_version(mount) == 1:
            existing = self.find(mount, path, None)
            if existing is not None and (
                not custom_metadata or dict(existing.custom_metadata) != dict(custom_metadata)
            ):
                raise CasConflict(
                    f"secret {location} in {self.where} already holds a secret that erelease "
                    "did not write for this connection (a KV version 1 mount has no "
                    "check-and-set to tell a concurrent change apart); re-run plan"
                )
            if custom_metadata:
                plain[V1_METADATA_KEY] = json.dumps(dict(custom_metadata), sort_keys=True)
            self._t.request(
                "put",
                f"{quote(mount)}/{quote(path)}",
                target=Target("write", f"secret {location}", "create/update"),
                json=plain,
            )
            return None
        # A new secret gets its marks *before* its data: were the marks written after,
        # a crash (or a sealed Vault) between the two requests would leave data that no
        # later apply could tell from someone else's secret. Marks on a path without
        # data are harmless: the next apply sees them as its own and writes with cas=0.
        marks_first = bool(custom_metadata) and cas == 0
        if marks_first:
            self._set_marks(mount, path, custom_metadata, capability="create/update")
        reply = self._t.request(
            "post",
            f"{quote(mount)}/data/{quote(path)}",
            target=Target("write", f"secret {location}", "create" if cas == 0 else "update"),
            json={"options": {"cas": cas}, "data": plain},
            accept=(400,),
        )
        if reply.status == 400:
            if reply.mentions("check-and-set"):
                raise CasConflict(conflict)
            raise SecretsError(f"{self.where} refused to write secret {location} (HTTP 400)")
        version = reply.data.get("version")
        if custom_metadata and not marks_first:
            self._set_marks(mount, path, custom_metadata, capability="update")
        return version if isinstance(version, int) else None

    def _set_marks(
        self, mount: str, path: str, custom_metadata: Mapping[str, str], *, capability: str
    ) -> None:
        self._t.request(
            "post",
            f"{quote(mount)}/metadata/{quote(path)}",
            target=Target("set the custom metadata of", f"secret {mount}/{path}", capability),
            json={"custom_metadata": dict(custom_metadata)},
        )

    def delete_all(self, mount: str, path: str) -> None:
        """Delete every version and the metadata (v2), or the secret (v1); missing is fine."""
        location = f"{mount}/{path}"
        api = f"{quote(mount)}/{quote(path)}"
        if self.kv_version(mount) == 2:
            api = f"{quote(mount)}/metadata/{quote(path)}"
        self._t.request(
            "delete",
            api,
            target=Target("delete", f"secret {location}", "delete"),
            accept=(404,),
        )
