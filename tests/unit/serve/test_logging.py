"""The access log: lines written directly equal the formatter's records, field for field."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.types import Message, Receive, Scope, Send

from erelease.serve._context import SCOPE_CLIENT_KEY
from erelease.serve._logging import (
    ACCESS_LOGGER,
    AccessLogHandler,
    AccessLogMiddleware,
    JsonFormatter,
    access_line,
    log_config,
)


def _record_line(created: float, pid: int, fields: dict[str, Any]) -> str:
    """What JsonFormatter writes for a record carrying ``fields``."""
    record = logging.makeLogRecord(
        {
            "name": ACCESS_LOGGER,
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "%s %s %d",
            "args": (fields["method"], fields["path"], fields["status"]),
            "created": created,
            "process": pid,
            "fields": fields,
        }
    )
    return JsonFormatter().format(record)


_text = st.text(st.characters(codec="utf-8"), max_size=40)


@given(
    created=st.floats(min_value=0, max_value=4e9),
    path=_text,
    agent=st.one_of(st.none(), _text.filter(bool)),
    client_id=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9._~-]{1,20}", fullmatch=True)),
    status=st.integers(100, 599),
    duration=st.floats(min_value=0, max_value=1e5),
)
def test_direct_lines_equal_the_formatters(
    created: float,
    path: str,
    agent: str | None,
    client_id: str | None,
    status: int,
    duration: float,
) -> None:
    fields: dict[str, Any] = {
        "event": "access",
        "method": "POST",
        "path": path,
        "status": status,
        "duration_ms": round(duration, 2),
        "remote": "127.0.0.1",
    }
    if client_id:
        fields["client_id"] = client_id
    if agent:
        fields["user_agent"] = agent
    line = access_line(created, 4242, fields)
    assert line == _record_line(created, 4242, fields)
    assert json.loads(line)["path"] == path


@pytest.fixture
def configured() -> Iterator[io.StringIO]:
    """log_config() as ``erelease serve`` applies it, writing to a buffer."""
    saved = {name: logging.getLogger(name) for name in ("erelease.serve", ACCESS_LOGGER)}
    state = {name: (lg.handlers[:], lg.level, lg.propagate) for name, lg in saved.items()}
    logging.config.dictConfig(log_config())
    stream = io.StringIO()
    for handler in logging.getLogger(ACCESS_LOGGER).handlers:
        if isinstance(handler, AccessLogHandler):
            handler.setStream(stream)
    try:
        yield stream
    finally:
        for name, (handlers, level, propagate) in state.items():
            logger = saved[name]
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def _only_serves_handler() -> None:
    """pytest >= 9 attaches its capture handlers to every non-propagating logger
    at the start of each test phase; drop them, leaving what serve configured."""
    access = logging.getLogger(ACCESS_LOGGER)
    access.handlers[:] = [h for h in access.handlers if type(h) is AccessLogHandler]
    assert len(access.handlers) == 1


async def _noop(_scope: Scope, _receive: Receive, _send: Send) -> None:
    return None


def _request(middleware: AccessLogMiddleware, query: bytes = b"") -> None:
    async def app(scope: Scope, _receive: Receive, send: Send) -> None:
        scope[SCOPE_CLIENT_KEY] = "Client0001"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: Message) -> None:
        return None

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/campus/oauth2/token",
        "query_string": query,
        "client": ("10.0.0.7", 5000),
        "headers": [(b"user-agent", b"probe/1"), (b"authorization", b"Basic c2VjcmV0")],
    }
    middleware.app = app
    asyncio.run(middleware(scope, receive, send))


def test_configured_access_log_is_written_directly_without_credentials(
    configured: io.StringIO,
) -> None:
    _only_serves_handler()
    middleware = AccessLogMiddleware(_noop)
    assert middleware._direct() is not None
    _request(middleware, query=b"appName=intNC&client_secret=hunter2")
    [line] = configured.getvalue().splitlines()
    logged = json.loads(line)
    assert logged["event"] == "access"
    assert logged["path"] == "/campus/oauth2/token"
    assert logged["client_id"] == "Client0001"
    assert logged["user_agent"] == "probe/1"
    assert logged["remote"] == "10.0.0.7"
    assert isinstance(logged["pid"], int)
    assert "hunter2" not in line and "c2VjcmV0" not in line and "appName" not in line


def test_any_other_handler_gets_ordinary_records(
    configured: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    access = logging.getLogger(ACCESS_LOGGER)
    access.addHandler(caplog.handler)  # an operator's (or a test's) own handler
    try:
        middleware = AccessLogMiddleware(_noop)
        assert middleware._direct() is None
        _request(middleware)
    finally:
        access.removeHandler(caplog.handler)
    [record] = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert json.loads(configured.getvalue())["client_id"] == "Client0001"  # and ours, alike
    fields = record.__dict__["fields"]
    assert fields["status"] == 200 and fields["client_id"] == "Client0001"
    assert record.getMessage() == "POST /campus/oauth2/token 200"
