"""Run the app under uvicorn with the settings a district server wants.

uvicorn parses HTTP; this module only chooses its options: JSON logs without
uvicorn's query-string-bearing access log, no ``Server`` banner, a graceful
shutdown on SIGTERM/SIGINT that lets in-flight requests finish, and proxy
headers trusted only when the operator names the proxies. ``workers`` > 1
hands the same options to the pre-fork supervisor in ``_workers``.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from erelease.errors import ErelaseError
from erelease.serve._app import create_app
from erelease.serve._logging import log_config
from erelease.serve._workers import run_workers
from erelease.settings import Settings
from erelease.state.base import StateStore

__all__ = ["GRACEFUL_SHUTDOWN", "build_config", "run_server"]

#: Seconds in-flight requests get to finish after SIGTERM before connections are closed.
GRACEFUL_SHUTDOWN = 10

log = logging.getLogger("erelease.serve")


def build_config(
    *,
    app: ASGIApp,
    host: str,
    port: int,
    forwarded_allow_ips: str | None = None,
    log_level: str = "INFO",
    configure_logging: bool = True,
) -> uvicorn.Config:
    """The uvicorn options ``run_server`` uses (tests run the same options on a thread).

    ``configure_logging=False`` leaves the process's logging as it is (for tests).
    """
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=log_config(log_level) if configure_logging else None,
        access_log=False,  # AccessLogMiddleware logs without query strings
        # X-Forwarded-For decides the address that throttling counts; trust it only
        # from proxies the operator names, never by default.
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        lifespan="on",
    )


def run_server(
    *,
    settings: Settings,
    store: StateStore,
    host: str,
    port: int,
    forwarded_allow_ips: str | None = None,
    log_level: str = "INFO",
    workers: int = 1,
) -> None:
    """Serve until SIGTERM/SIGINT, then drain in-flight requests and return.

    ``workers`` > 1 serves from that many forked processes sharing the
    listening socket (one core each; see ``_workers``); it must be called
    from the main thread. ``store`` is used by each of them (each opens its
    own connections after the fork) and is closed by the caller afterwards.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    config = build_config(
        app=create_app(settings=settings, store=store),
        host=host,
        port=port,
        forwarded_allow_ips=forwarded_allow_ips,
        log_level=log_level,
    )
    log.info(
        "serving stack %s at http://%s:%d%s with %d worker(s)",
        settings.stack,
        host,
        port,
        settings.base_path or "/",
        workers,
    )
    with _startup_failure_is_an_error(host, port):
        if workers > 1:
            run_workers(config, workers)
            return
        server = uvicorn.Server(config)
        with _sigterm_returns():
            server.run()


@contextlib.contextmanager
def _startup_failure_is_an_error(host: str, port: int) -> Iterator[None]:
    """uvicorn ends a failed start (port in use, bad address, lifespan error) with
    ``sys.exit(3)``; 3 means "a connectivity test failed" to erelease's callers
    (SPEC §3.1), so it becomes the one-line error of exit code 1."""
    try:
        yield
    except SystemExit as exc:
        if exc.code in (0, None):
            raise
        raise ErelaseError(
            f"erelease serve could not start on {host}:{port}",
            hint="the log above says why, for example that the address is already in use",
        ) from None


@contextlib.contextmanager
def _sigterm_returns() -> Iterator[None]:
    """Make SIGTERM (an orchestrator's stop) end in a normal return after the drain.

    uvicorn handles the signal itself while serving, then re-raises it once it
    has shut down; with the default action that would kill the process before
    the caller could close the registry. A no-op handler here lets
    :func:`run_server` return instead, so ``erelease serve`` exits 0. SIGINT
    keeps its default (KeyboardInterrupt: exit 130).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
