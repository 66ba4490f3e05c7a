"""A scripted stand-in for Vault on a loopback socket, for failures a dev server cannot show.

OpenBao dev mode cannot be a standby, cannot fail with a 500 on cue, and does
not serve TLS with a certificate we choose; this answers the few endpoints the
resolver calls (mount lookup, KV v2 read, health, token lookup) and lets a test
script the rest.
"""

from __future__ import annotations

from collections.abc import Callable

from .conftest import Answer, Seen

KV2_MOUNT = {"data": {"type": "kv", "options": {"version": "2"}, "path": "secret/"}}


def kv2_read(values: dict[str, str], version: int = 1) -> Answer:
    return Answer(200, {"data": {"data": values, "metadata": {"version": version}}})


def vault_like(
    read: Callable[[Seen], Answer],
    *,
    health: Answer | None = None,
    lookup: Answer | None = None,
) -> Callable[[Seen], Answer]:
    """A responder: mounts and health answer normally, data reads go to ``read``."""

    def respond(seen: Seen) -> Answer:
        path = seen.path.split("?", 1)[0]
        if path.startswith("/v1/sys/internal/ui/mounts/"):
            return Answer(200, KV2_MOUNT)
        if path == "/v1/sys/health":
            return health or Answer(200, {"initialized": True, "sealed": False, "standby": False})
        if path == "/v1/auth/token/lookup-self":
            return lookup or Answer(200, {"data": {"policies": ["default"]}})
        return read(seen)

    return respond
