"""Assemble the ASGI application: routes under ``<basePath>``, health, OpenAPI.

The routes sit under the path of ``incoming.baseUrl`` so that the URLs
``apply`` hands out (SPEC §2.2) are exactly the URLs this app answers.

Registry calls are synchronous and made on the event loop. That is deliberate:
a token request is two short registry statements, and handing each to a thread
would cost more than the statement (and would break SQLite's thread affinity).
A replica is one process with one loop; run more replicas against PostgreSQL to
use more cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from erelease.serve._context import ServeContext
from erelease.serve._index import TranscriptIndex
from erelease.serve._logging import AccessLogMiddleware
from erelease.serve._openapi import openapi_document
from erelease.serve._throttle import SlidingWindowThrottle
from erelease.serve._token import token_endpoint
from erelease.serve._transcripts import get_transcript, list_transcripts
from erelease.settings import Settings
from erelease.state.base import StateStore

__all__ = ["PURGE_INTERVAL", "create_app"]

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
            purged = ctx.store.purge_tokens(stack=ctx.stack, now=ctx.clock())
            if purged:
                log.info("forgot %d expired token(s)", purged)
        except Exception:  # keep serving; the next round may succeed
            log.warning("could not purge expired tokens from the registry")
        await asyncio.sleep(interval)


def create_app(
    *,
    settings: Settings,
    store: StateStore,
    client_failure_limit: int = 10,
    addr_failure_limit: int = 20,
    failure_window: float = 60.0,
    purge_interval: float = PURGE_INTERVAL,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The serve application for one replica.

    ``store`` is used from the event loop's thread only and is not closed here.
    Failures are throttled per client ID (``client_failure_limit``) and per
    peer address (``addr_failure_limit``) within ``failure_window`` seconds.
    """
    base = settings.base_path
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
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        ctx.index.refresh()
        purger = asyncio.create_task(_purge_forever(ctx, purge_interval))
        try:
            yield
        finally:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger

    routes = [
        Route("/healthz", _healthz, methods=["GET"]),
        Route(f"{base}/oauth2/token", token_endpoint, methods=["POST"]),
        Route(transcripts, list_transcripts, methods=["GET"]),
        Route(transcripts + "/{document_id:path}", get_transcript, methods=["GET"]),
        Route(f"{base}/openapi.json", _openapi, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(AccessLogMiddleware)],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    return app
