"""What every serve handler shares: settings, the store, the index, the throttles.

One :class:`ServeContext` per application instance (per replica). Nothing in
it caches a credential or a token: every authentication reads the registry,
so a delete or a rotation committed by ``apply`` is seen by the very next
request on every replica.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from erelease.serve._index import TranscriptIndex
from erelease.serve._throttle import SlidingWindowThrottle
from erelease.serve._wal import WriteGate
from erelease.settings import Settings
from erelease.state.base import StateStore

__all__ = [
    "REALM",
    "SCOPE_CLIENT_KEY",
    "ClientAuth",
    "ServeContext",
    "client_auth_reader",
    "remote_addr",
    "sha256_hex",
]

#: The protection space named in WWW-Authenticate (RFC 7617 §2, RFC 6750 §3).
REALM = "erelease"
#: Scope key where handlers leave the authenticated client ID for the access log.
SCOPE_CLIENT_KEY = "erelease.client_id"


#: What the Token URL checks: (kind, connection name, client-secret digest, appName).
ClientAuth = tuple[str, str, str | None, Any]


def client_auth_reader(store: StateStore) -> Callable[[str, str], ClientAuth | None]:
    """``(stack, client_id) -> ClientAuth``, read from the live registry row every call.

    A store that can read just these columns (``find_client_auth``, SQLite) is
    asked for them; any other is asked for the whole record. Either way nothing
    is cached, so a rotation or a delete is seen by the very next request.
    """
    lean = getattr(store, "find_client_auth", None)
    if callable(lean):
        return lambda stack, client_id: lean(stack=stack, client_id=client_id)

    def whole(stack: str, client_id: str) -> ClientAuth | None:
        record = store.find_client(stack=stack, client_id=client_id)
        if record is None:
            return None
        digest = record.outputs.get("clientSecretSha256")
        app_name = record.outputs.get("appName", "")
        return record.kind, record.name, digest if isinstance(digest, str) else None, app_name

    return whole


@dataclass
class ServeContext:
    """The state of one serve application."""

    settings: Settings
    store: StateStore
    stack: str
    index: TranscriptIndex
    client_throttle: SlidingWindowThrottle
    addr_throttle: SlidingWindowThrottle
    clock: Callable[[], float] = field(default=time.time)
    #: SQLite: the server's writes take turns through it (see ``_wal``); None otherwise.
    write_gate: WriteGate | None = None
    client_auth: Callable[[str, str], ClientAuth | None] = field(init=False)

    def __post_init__(self) -> None:
        self.client_auth = client_auth_reader(self.store)

    def writing(self) -> contextlib.AbstractContextManager[None]:
        """Around every registry write of the server."""
        return self.write_gate.held() if self.write_gate is not None else contextlib.nullcontext()

    @property
    def transcripts_url(self) -> str:
        """The public eTranscripts URL, as ``apply`` hands it out (SPEC §2.2)."""
        return self.settings.base_url.rstrip("/") + "/api/campus/transcript/eTranscripts"


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def remote_addr(request: Request) -> str:
    """The peer address (uvicorn applies trusted proxy headers before we see it)."""
    client = request.client
    return client.host if client is not None else ""
