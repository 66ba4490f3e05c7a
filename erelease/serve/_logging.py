"""Structured access logs that cannot leak what the endpoints guard.

uvicorn's own access log prints the request line, query string included; a
provider that puts ``client_secret`` or ``access_token`` in a URL (against the
RFCs, but it happens) would have it written to disk. So uvicorn's access log
is turned off and this middleware writes one JSON line per request from an
allow-list of fields: method, path (never the query), status, duration, peer
address, the authenticated client ID (an identifier, not a credential) and a
truncated user agent. No header value, body or query string is ever logged.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from erelease.serve._context import SCOPE_CLIENT_KEY

__all__ = ["ACCESS_LOGGER", "AccessLogMiddleware", "JsonFormatter", "log_config"]

ACCESS_LOGGER = "erelease.serve.access"
_MAX_FIELD = 200
_MAX_AGENT = 120


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, plus ``record.fields``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``erelease serve``: JSON lines on stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stderr": handler},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            # Off: it would log query strings. AccessLogMiddleware replaces it.
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "erelease.serve": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }


class AccessLogMiddleware:
    """Pure ASGI middleware (no per-request task or body buffering): one log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self._write(scope, status, time.perf_counter() - start)

    def _write(self, scope: Scope, status: int, seconds: float) -> None:
        client = scope.get("client")
        agent = ""
        for name, value in scope.get("headers", ()):
            if name == b"user-agent":
                agent = value.decode("latin-1")[:_MAX_AGENT]
                break
        fields: dict[str, Any] = {
            "event": "access",
            "method": scope.get("method", ""),
            "path": str(scope.get("path", ""))[:_MAX_FIELD],
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "remote": client[0] if client else "",
        }
        client_id = scope.get(SCOPE_CLIENT_KEY)
        if client_id:
            fields["client_id"] = client_id
        if agent:
            fields["user_agent"] = agent
        # makeRecord + handle: Logger.info would also walk the stack to find the caller,
        # which costs more than the rest of this line and says nothing useful here.
        record = self.log.makeRecord(
            self.log.name,
            logging.INFO,
            __file__,
            0,
            "%s %s %d",
            (fields["method"], fields["path"], status),
            None,
            extra={"fields": fields},
        )
        self.log.handle(record)
