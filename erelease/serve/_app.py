"""Assemble the ASGI application: routes under ``<basePath>``, health, OpenAPI.

The routes sit under the path of ``incoming.baseUrl`` so that the URLs
``apply`` hands out (SPEC §2.2) are exactly the URLs this app answers.

Registry calls are synchronous and made on the event loop. That is deliberate:
a token request is two short registry statements, and handing each to a thread
would cost more than the statement (and would break SQLite's thread affinity).
A replica is one process with one loop; ``run_server(workers=N)`` forks more
of them on one socket, and more replicas can run against one PostgreSQL.

``POST`` on the Token URL, the request a provider makes most, goes straight to
its plain ASGI endpoint; everything else (and the Token URL's other methods,
answered 405) goes through Starlette's router. The access log wraps both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from erelease.serve._context import ServeContext
from erelease.serve._index import TranscriptIndex
from erelease.serve._logging import AccessLogMiddleware
from erelease.serve._openapi import openapi_document
from erelease.serve._throttle import SlidingWindowThrottle
from erelease.serve._token import TokenEndpoint
from erelease.serve._transcripts import get_transcript, list_transcripts
from erelease.serve._wal import CHECKPOINT_INTERVAL, WriteGate, wal_checkpoints
from erelease.settings import Settings
from erelease.state.base import StateStore
from erelease.state.sqlite import SQLiteStore

__all__ = ["PURGE_INTERVAL", "ServeApp", "create_app"]

log = logging.getLogger("erelease.serve")

#: How often each replica forgets expired tokens (purging is idempotent across replicas).
PURGE_INTERVAL = 300.0


def _transcripts_dir(settings: Settings) -> Path:
    path = settings.serve.transcripts
    return path if path.is_absolute() else settings.config_dir / path


async def _healthz(request: Request) -> Response:
    ctx: ServeContext = request.app.state.ctx
    try:
        ctx.store.read_stack(stack=ctx.stack)
    except Exception:  # any failure to read is "unhealthy", never a 500 traceback
        log.warning("health check: the registry cannot be read")
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


async def _http_error(request: Request, exc: Exception) -> Response:
    """404/405 and friends as JSON, like every other answer of this server."""
    assert isinstance(exc, HTTPException)
    names = {404: "not_found", 405: "method_not_allowed"}
    body = {"error": names.get(exc.status_code, "invalid_request"), "error_description": exc.detail}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _purge_forever(ctx: ServeContext, interval: float) -> None:
    while True:
        try:
            with ctx.writing():
                purged = ctx.store.purge_tokens(stack=ctx.stack, now=ctx.clock())
            if purged:
                log.info("forgot %d expired token(s)", purged)
        except Exception:  # keep serving; the next round may succeed
            log.warning("could not purge expired tokens from the registry")
        await asyncio.sleep(interval)


class ServeApp:
    """The ASGI application of one replica: access log, Token URL fast lane, Starlette."""

    def __init__(self, starlette: Starlette, token_path: str, token: TokenEndpoint) -> None:
        self.starlette = starlette
        self.state = starlette.state
        self.routes = starlette.routes
        self._token_path = token_path
        self.token_endpoint = token
        self._logged = AccessLogMiddleware(self._route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._logged(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        # an exception escaping the endpoint is answered 500 by uvicorn, as by Starlette
        if (
            scope["type"] == "http"
            and scope["path"] == self._token_path
            and scope["method"] == "POST"
        ):
            await self.token_endpoint(scope, receive, send)
        else:
            await self.starlette(scope, receive, send)


def create_app(
    *,
    settings: Settings,
    store: StateStore,
    client_failure_limit: int = 10,
    addr_failure_limit: int = 20,
    failure_window: float = 60.0,
    purge_interval: float = PURGE_INTERVAL,
    checkpoint_interval: float = CHECKPOINT_INTERVAL,
    clock: Callable[[], float] = time.time,
) -> ServeApp:
    """The serve application for one replica.

    ``store`` is used from the event loop's thread only and is not closed here.
    Failures are throttled per client ID (``client_failure_limit``) and per
    peer address (``addr_failure_limit``) within ``failure_window`` seconds.
    An SQLite registry's WAL is checkpointed every ``checkpoint_interval``
    seconds on a thread (0: by commits, as SQLite does by default).
    """
    # The ASGI scope's path is percent-decoded (ASGI spec, HTTP connection scope), so
    # a base URL path like /my%20district is matched as "/my district".
    base = unquote(settings.base_path)
    transcripts = f"{base}/api/campus/transcript/eTranscripts"
    openapi = openapi_document(settings.base_url)

    async def _openapi(_request: Request) -> Response:
        return JSONResponse(openapi)

    ctx = ServeContext(
        settings=settings,
        store=store,
        stack=settings.stack,
        index=TranscriptIndex(_transcripts_dir(settings)),
        client_throttle=SlidingWindowThrottle(limit=client_failure_limit, window=failure_window),
        addr_throttle=SlidingWindowThrottle(limit=addr_failure_limit, window=failure_window),
        clock=clock,
        # made before any worker is forked, so that all of them share it
        write_gate=WriteGate() if isinstance(store, SQLiteStore) else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        ctx.index.refresh()
        with wal_checkpoints(
            store, gate=ctx.write_gate or WriteGate(), interval=checkpoint_interval
        ):
            purger = asyncio.create_task(_purge_forever(ctx, purge_interval))
            try:
                yield
            finally:
                purger.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await purger

    token = TokenEndpoint(ctx)
    routes = [
        Route("/healthz", _healthz, methods=["GET"]),
        Route(f"{base}/oauth2/token", token, methods=["POST"]),
        Route(transcripts, list_transcripts, methods=["GET"]),
        Route(transcripts + "/{document_id:path}", get_transcript, methods=["GET"]),
        Route(f"{base}/openapi.json", _openapi, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    return ServeApp(app, f"{base}/oauth2/token", token)
