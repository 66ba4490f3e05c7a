"""What every serve handler shares: settings, the store, the index, the throttles.

One :class:`ServeContext` per application instance (per replica). Nothing in
it caches a credential or a token: every authentication reads the registry,
so a delete or a rotation committed by ``apply`` is seen by the very next
request on every replica.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from erelease.serve._index import TranscriptIndex
from erelease.serve._throttle import SlidingWindowThrottle
from erelease.settings import Settings
from erelease.state.base import StateStore

__all__ = ["REALM", "SCOPE_CLIENT_KEY", "ServeContext", "remote_addr", "sha256_hex"]

#: The protection space named in WWW-Authenticate (RFC 7617 §2, RFC 6750 §3).
REALM = "erelease"
#: Scope key where handlers leave the authenticated client ID for the access log.
SCOPE_CLIENT_KEY = "erelease.client_id"


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
