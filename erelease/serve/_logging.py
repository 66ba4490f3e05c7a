"""Structured access logs that cannot leak what the endpoints guard.

uvicorn's own access log prints the request line, query string included; a
provider that puts ``client_secret`` or ``access_token`` in a URL (against the
RFCs, but it happens) would have it written to disk. So uvicorn's access log
is turned off and this middleware writes one JSON line per request from an
allow-list of fields: method, path (never the query), status, duration, peer
address, the authenticated client ID (an identifier, not a credential) and a
truncated user agent. No header value, body or query string is ever logged.

One line per request is also a cost paid on every request. Building a
``LogRecord``, a dict of fields and then ``json.dumps`` of it took about a
tenth of a token request, so when the access log goes where :func:`log_config`
sends it (one :class:`AccessLogHandler`), the middleware writes the finished
line straight to that handler. Any other configuration (a test's capture, an
operator's own handlers) gets ordinary records with the same fields.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from json.encoder import encode_basestring as _quote  # what json.dumps(ensure_ascii=False) uses
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from erelease.serve._context import SCOPE_CLIENT_KEY

__all__ = [
    "ACCESS_LOGGER",
    "AccessLogHandler",
    "AccessLogMiddleware",
    "JsonFormatter",
    "access_line",
    "log_config",
]

ACCESS_LOGGER = "erelease.serve.access"
_MAX_FIELD = 200
_MAX_AGENT = 120


def _timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, pid, message, plus ``record.fields``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            # several worker processes write to one stream: say which one speaks
            "pid": record.process if record.process is not None else os.getpid(),
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


class AccessLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The access log's handler: JSON records, and finished lines written as they are."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.setFormatter(JsonFormatter())

    def write_line(self, line: str) -> None:
        """Write one finished JSON line (no newline) and flush it, as ``emit`` would."""
        self.acquire()
        try:
            self.stream.write(line + self.terminator)
            self.flush()
        except Exception:  # a full disk must not fail the request; logging reports it
            self.handleError(logging.makeLogRecord({"msg": "access log line"}))
        finally:
            self.release()


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``erelease serve``: JSON lines on stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    access = {"()": f"{__name__}.AccessLogHandler", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stderr": handler, "access": access},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            # Off: it would log query strings. AccessLogMiddleware replaces it.
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "erelease.serve": {"handlers": ["stderr"], "level": level, "propagate": False},
            ACCESS_LOGGER: {"handlers": ["access"], "level": level, "propagate": False},
        },
    }


def access_line(created: float, pid: int, fields: dict[str, Any]) -> str:
    """Exactly what :class:`JsonFormatter` writes for an access record with ``fields``.

    ``fields`` holds ``method``, ``path``, ``remote`` (strings), ``status`` (int),
    ``duration_ms`` (float) and optionally ``client_id`` and ``user_agent``.
    """
    method, path, status = fields["method"], fields["path"], fields["status"]
    parts = [
        '{"ts":"',
        _timestamp(created),
        f'","level":"info","logger":"{ACCESS_LOGGER}","pid":{pid:d},"message":',
        _quote(f"{method} {path} {status:d}"),
        ',"event":"access","method":',
        _quote(method),
        ',"path":',
        _quote(path),
        f',"status":{status:d},"duration_ms":{fields["duration_ms"]!r},"remote":',
        _quote(fields["remote"]),
    ]
    if "client_id" in fields:
        parts += (',"client_id":', _quote(fields["client_id"]))
    if "user_agent" in fields:
        parts += (',"user_agent":', _quote(fields["user_agent"]))
    parts.append("}")
    return "".join(parts)


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

    def _direct(self) -> AccessLogHandler | None:
        """The handler to write finished lines to, when it is the access log's only one."""
        handlers = self.log.handlers
        if len(handlers) != 1 or self.log.filters or self.log.propagate:
            return None
        handler = handlers[0]
        if type(handler) is not AccessLogHandler or handler.filters:
            return None
        if handler.level > logging.INFO or type(handler.formatter) is not JsonFormatter:
            return None
        return handler

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
        direct = self._direct()
        if direct is not None:
            direct.write_line(access_line(time.time(), os.getpid(), fields))
            return
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
