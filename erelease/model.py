"""Plain values shared by every layer: connections, references, secrets, results.

This module imports nothing of erelease but :mod:`erelease.errors`, so the
config loader, the secrets resolver, the state store, the checks and the engine
can all speak the same types without importing each other.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "INCOMING",
    "KINDS",
    "OUTGOING",
    "SECRET_FIELDS",
    "CheckResult",
    "Connection",
    "ConnectionRecord",
    "Disclosure",
    "HistoryEntry",
    "Kind",
    "LockInfo",
    "Secret",
    "SecretRef",
    "StackInfo",
    "TokenRecord",
    "parse_ref",
]

Kind = Literal["outgoing", "incoming"]
OUTGOING: Kind = "outgoing"
INCOMING: Kind = "incoming"
KINDS: tuple[Kind, ...] = (OUTGOING, INCOMING)

#: spec fields whose value must be a secret reference, per kind.
SECRET_FIELDS: Mapping[str, frozenset[str]] = {
    OUTGOING: frozenset({"consumerSecret", "password"}),
    INCOMING: frozenset({"credentials"}),
}


class Secret:
    """A secret value. ``str``/``repr``/``format`` show ``***``; :meth:`reveal` unwraps it.

    Unwrap only where the value is sent (an HTTP request, a Vault write).
    It refuses to be pickled so that it cannot leak into a cache or a plan file.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


_REF_RE = re.compile(r"ref\+(?P<scheme>vault|openbao)://(?P<rest>.*)", re.DOTALL)
_SEGMENT_RE = re.compile(r"[A-Za-z0-9._@-]+")
_KEY_RE = re.compile(r"[A-Za-z0-9._-]+")
_AUTH_PARAMS = frozenset(
    {"token", "role_id", "secret_id", "auth", "auth_method", "role", "jwt", "password"}
)


@dataclass(frozen=True, order=True)
class SecretRef:
    """``ref+vault://<mount>/<path>#<key>?version=N`` — where a secret lives.

    ``path`` is the logical KV path (``erelease/parchment``), never the API path
    with ``/data/``. ``key`` is ``None`` for a whole secret (incoming
    ``credentials``). ``version`` pins a KV v2 version.
    """

    mount: str
    path: str
    key: str | None = None
    version: int | None = None
    scheme: str = field(default="vault", compare=False)

    @property
    def location(self) -> str:
        """``mount/path`` — what one Vault read fetches."""
        return f"{self.mount}/{self.path}"

    @property
    def uri(self) -> str:
        text = f"ref+{self.scheme}://{self.mount}/{self.path}"
        if self.version is not None:
            text += f"?version={self.version}"
        if self.key is not None:
            text += f"#{self.key}"
        return text

    def __str__(self) -> str:
        text = self.location
        if self.key is not None:
            text += f"#{self.key}"
        return text


def is_ref(value: object) -> bool:
    """True for a string that looks like a secret reference (valid or not)."""
    return isinstance(value, str) and value.startswith(("ref+vault://", "ref+openbao://"))


def parse_ref(text: str, *, require_key: bool = True) -> SecretRef:
    """Parse a reference, raising ``ValueError`` with a user-facing message."""
    match = _REF_RE.fullmatch(text)
    if match is None:
        raise ValueError("a secret reference starts with ref+vault:// or ref+openbao://")
    scheme = match.group("scheme")
    rest = match.group("rest")
    key: str | None = None
    if "#" in rest:
        rest, key = rest.split("#", 1)
        if not key:
            raise ValueError("the #key after the path is empty")
    query = ""
    if "?" in rest:
        rest, query = rest.split("?", 1)
    # Keys may follow the query (ref+vault://m/p?version=2#k) or precede it in
    # the fragment (…#k?version=2, as some tools write it): accept both.
    if key is not None and "?" in key:
        key, query2 = key.split("?", 1)
        query = f"{query}&{query2}" if query else query2
    version: int | None = None
    if query:
        params = parse_qs(query, keep_blank_values=True)
        bad = sorted(p for p in params if p.lower() in _AUTH_PARAMS)
        if bad:
            raise ValueError(
                f"authentication parameters are not allowed in a reference ({', '.join(bad)}); "
                "configure Vault auth in erelease.yaml or the environment"
            )
        unknown = sorted(p for p in params if p != "version")
        if unknown:
            raise ValueError(f"unknown reference parameter(s): {', '.join(unknown)}")
        raw = params["version"][-1]
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError("version must be a positive integer")
        version = int(raw)
    if "@" in rest.split("/", 1)[0] or urlsplit(f"x://{rest}").username:
        raise ValueError("credentials are not allowed in a reference")
    parts = [p for p in rest.split("/")]
    if len(parts) < 2 or any(p == "" for p in parts):
        raise ValueError("a reference needs <mount>/<path> with no empty segments")
    for part in parts:
        if part in (".", "..") or not _SEGMENT_RE.fullmatch(part):
            raise ValueError(f"invalid path segment {part!r} in reference")
    mount, path = parts[0], "/".join(parts[1:])
    if path.startswith("data/") or path.startswith("metadata/"):
        raise ValueError(
            f"use the logical KV path (bao kv get -mount={mount} {path.split('/', 1)[-1]}), "
            "not the API path with /data/ or /metadata/"
        )
    if require_key and key is None:
        raise ValueError("a reference to a single value needs #<key> after the path")
    if key is not None and not _KEY_RE.fullmatch(key):
        raise ValueError(f"invalid key {key!r} in reference")
    return SecretRef(mount=mount, path=path, key=key, version=version, scheme=scheme)


@dataclass(frozen=True)
class Connection:
    """One desired connection, as validated from ``connections.d/``.

    ``spec`` holds normalised values: strings, ints, bools, and
    :class:`SecretRef` for referenced fields. No secret value lives here.
    """

    kind: Kind
    name: str
    spec: Mapping[str, Any]
    labels: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False
    file: str = ""
    line: int = 0

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"

    def refs(self) -> dict[str, SecretRef]:
        """The spec fields that are references, by field name."""
        return {k: v for k, v in self.spec.items() if isinstance(v, SecretRef)}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one connectivity test (SPEC §5.5)."""

    address: str
    kind: Kind
    name: str
    status: Literal["valid", "failed", "untested"]
    reason: str
    message: str
    duration_ms: int
    checked_at: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "valid"


@dataclass
class ConnectionRecord:
    """One row of the registry: an applied connection.

    ``spec`` is the non-secret spec with references stored as their URI
    strings; ``secret_versions`` maps a referenced field to the KV version seen
    at apply; ``outputs`` holds the Information to Share (incoming) including
    ``clientSecretSha256`` — a digest, never the secret.
    """

    kind: Kind
    name: str
    spec: dict[str, Any]
    secret_versions: dict[str, int | None] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    protect: bool = False
    created_at: str = ""
    updated_at: str = ""
    last_test: CheckResult | None = None

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class StackInfo:
    """A stack's identity in the registry: lineage fixed at creation, serial per apply."""

    stack: str
    lineage: str
    serial: int
    created_at: str = ""


@dataclass(frozen=True)
class HistoryEntry:
    """One apply that changed something (append-only)."""

    serial: int
    applied_at: str
    actor: str
    summary: Mapping[str, int]
    git_commit: str | None = None
    changes: tuple[tuple[str, str], ...] = ()  # (address, action)


@dataclass(frozen=True)
class LockInfo:
    """Who holds a stack lock: enough for a contender to name them."""

    lock_id: str
    stack: str
    holder: str
    host: str
    pid: int
    operation: str
    since: str

    def describe(self) -> str:
        return (
            f"{self.holder}@{self.host} (pid {self.pid}) running {self.operation} "
            f"since {self.since}, lock ID {self.lock_id}"
        )


@dataclass(frozen=True)
class TokenRecord:
    """An issued bearer token as stored by serve: only its digest."""

    token_sha256: str
    client_id: str
    connection: str
    secret_sha256: str
    expires_at: float


@dataclass(frozen=True)
class Disclosure:
    """One released transcript: the FERPA record of disclosure."""

    connection: str
    client_id: str
    document_id: str
    released_at: str
    remote_addr: str = ""
