"""The simulated vendor's behaviour: what each request gets, and the counters.

Kept apart from :mod:`erelease.devtools.vendorsim`, which runs it: this module
is the HTTP/1.1 wire format (just enough of it: keep-alive, Content-Length
bodies) and the RFC 6749 / RFC 6750 rules a vendor applies, including the ways
a vendor can be broken (:class:`Mode`). Everything here runs on the server's
event loop; the counters sit behind one lock shared with the test thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import secrets
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from http import HTTPStatus
from urllib.parse import parse_qs, unquote_plus

__all__ = ["ClientStats", "Mode", "SimClient", "VendorApp", "read_request"]

MAX_BODY = 1024 * 1024
_LOGIN_PAGE = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form></form></html>"


class Mode(StrEnum):
    """How a client's token requests are answered; credentials matter in ``ok``/``slow``."""

    OK = "ok"
    BAD_CLIENT = "bad_client"  # 401 invalid_client with WWW-Authenticate
    BAD_GRANT = "bad_grant"  # 400 invalid_grant
    UNAUTHORIZED_CLIENT = "unauthorized_client"  # 400 unauthorized_client
    HTML = "html"  # 200 text/html login page
    ERROR = "error"  # 500 always
    FLAKY = "flaky"  # 503 for the first `fail_first` requests, then ok
    RATE_LIMITED = "rate_limited"  # 429 + Retry-After for the first `fail_first`, then ok
    SLOW = "slow"  # waits `delay` seconds, then ok
    MISSING_TOKEN = "missing_token"  # 200 JSON without access_token
    WRONG_TOKEN_TYPE = "wrong_token_type"  # 200 JSON with token_type "mac"
    ECHO = "echo"  # 400 invalid_grant quoting the password it was sent (a careless vendor)
    ECHO_AUTH = "echo_auth"  # 401 invalid_client quoting the Authorization header it was sent


@dataclass
class SimClient:
    """One set of vendor-issued credentials and how the simulator treats it."""

    client_id: str
    client_secret: str
    username: str | None = None
    password: str | None = None
    mode: Mode = Mode.OK
    fail_first: int = 2
    delay: float = 5.0
    retry_after: int = 1


@dataclass
class ClientStats:
    """Counters for one client id (``""`` for requests that named none)."""

    requests: int = 0
    token_requests: int = 0
    uploads: int = 0
    in_flight: int = 0
    max_concurrent: int = 0


@dataclass(frozen=True)
class Request:
    """What the handlers need of an HTTP request."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Response:
    """An HTTP response, serialised in one write."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self, keep_alive: bool) -> bytes:
        lines = [
            f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            f"Connection: {'keep-alive' if keep_alive else 'close'}",
            *(f"{name}: {value}" for name, value in self.headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def _json(data: object, status: int = 200, **headers: str) -> Response:
    return Response(status, json.dumps(data).encode(), "application/json", headers)


def _oauth_error(status: int, code: str, description: str) -> Response:
    headers = {"Cache-Control": "no-store"}
    if status == 401:  # RFC 6749 §5.2: invalid_client as 401 carries WWW-Authenticate
        headers["WWW-Authenticate"] = 'Basic realm="vendorsim"'
    return _json({"error": code, "error_description": description}, status, **headers)


def _invalid_token() -> Response:
    # RFC 6750 §3: the challenge names the error.
    challenge = 'Bearer realm="vendorsim", error="invalid_token"'
    return Response(401, headers={"WWW-Authenticate": challenge})


#: Modes that answer the same way every time, whatever the credentials.
_CANNED: dict[Mode, Response] = {
    Mode.BAD_CLIENT: _oauth_error(401, "invalid_client", "Client authentication failed"),
    Mode.BAD_GRANT: _oauth_error(400, "invalid_grant", "The user credentials are invalid"),
    Mode.UNAUTHORIZED_CLIENT: _oauth_error(400, "unauthorized_client", "grant not allowed"),
    Mode.HTML: Response(200, _LOGIN_PAGE, "text/html; charset=utf-8"),
    Mode.ERROR: Response(500, b"internal error\n"),
    Mode.MISSING_TOKEN: _json({"token_type": "Bearer", "expires_in": 3600}),
    Mode.WRONG_TOKEN_TYPE: _json({"access_token": "x" * 32, "token_type": "mac"}),
}


def _parse_basic(header: str) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: base64 of the form-urlencoded id and secret, joined by ``:``."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (unquote_plus(user), unquote_plus(password)) if sep else None


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One request from a keep-alive connection; ``None`` when the client is done."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise
        return None
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    if "transfer-encoding" in headers or not 0 <= length <= MAX_BODY:
        raise ValueError("unsupported request body")
    body = await reader.readexactly(length) if length else b""
    return Request(method, target.split("?", 1)[0], headers, body)


class VendorApp:
    """Answers requests like a vendor would; counts them per client."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.lock = threading.Lock()
        self.clients: dict[str, SimClient] = {}
        self.stats: dict[str, ClientStats] = {}
        self.failures: dict[str, int] = {}  # token requests seen per flaky/rate-limited client
        self.tokens: dict[str, str] = {}  # access token -> client id
        self.in_flight = self.max_concurrent = self.requests = 0

    async def handle(self, request: Request) -> Response:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_concurrent = max(self.max_concurrent, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            path, method = request.path, request.method
            if path.endswith("/token") and method == "POST":
                return await self.token(request)
            if "/pesc/highschool/transcript/" in path and method == "POST":
                return self.upload(request)
            if path.endswith("/eTranscripts") and method == "GET":
                return self.resource(request)
            if path == "/" and method == "GET":
                return Response(200, b"vendorsim\n")
            return Response(404, b"not found\n")
        finally:
            with self.lock:
                self.in_flight -= 1

    @contextlib.contextmanager
    def _counting(self, client_id: str, *, token: bool = False) -> Iterator[ClientStats]:
        with self.lock:
            stats = self.stats.setdefault(client_id, ClientStats())
            stats.requests += 1
            stats.token_requests += token
            stats.in_flight += 1
            stats.max_concurrent = max(stats.max_concurrent, stats.in_flight)
        try:
            yield stats
        finally:
            with self.lock:
                stats.in_flight -= 1

    async def token(self, request: Request) -> Response:
        body = request.body.decode("utf-8", "replace")
        form = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
        basic = _parse_basic(request.headers.get("authorization", ""))
        if basic is not None and "client_id" in form:
            # RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
            return _oauth_error(400, "invalid_request", "more than one client authentication")
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        with self._counting(client_id, token=True):
            with self.lock:
                client = self.clients.get(client_id)
                failed = self.failures.get(client_id, 0)
                self.failures[client_id] = failed + 1
            if client is not None:
                authorization = request.headers.get("authorization", "")
                early = await self._misbehave(client, failed, form, authorization)
                if early is not None:
                    return early
            if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
                return _oauth_error(400, "invalid_request", "expected a form-encoded body")
            if client is None or not hmac.compare_digest(
                secret.encode(), client.client_secret.encode()
            ):
                return _oauth_error(401, "invalid_client", "Client authentication failed")
            grant = form.get("grant_type")
            if grant == "password":  # RFC 6749 §4.3.2
                given = f"{form.get('username')}\0{form.get('password')}".encode()
                wanted = f"{client.username}\0{client.password}".encode()
                if client.username is None or not hmac.compare_digest(given, wanted):
                    return _oauth_error(400, "invalid_grant", "Bad user name or password")
            elif grant != "client_credentials":  # RFC 6749 §4.4.2
                return _oauth_error(400, "unsupported_grant_type", "unsupported grant_type")
            return self._issue(client)

    async def _misbehave(
        self, client: SimClient, failed: int, form: dict[str, str], authorization: str
    ) -> Response | None:
        if client.mode in _CANNED:
            return _CANNED[client.mode]
        if client.mode == Mode.ECHO:
            echoed = f"wrong password {form.get('password')} for {form.get('username')}"
            return _oauth_error(400, "invalid_grant", echoed)
        if client.mode == Mode.ECHO_AUTH:
            return _oauth_error(401, "invalid_client", f"cannot verify {authorization}")
        if client.mode == Mode.SLOW:
            await asyncio.sleep(client.delay)
        elif client.mode == Mode.FLAKY and failed < client.fail_first:
            return Response(503, b"try again\n")
        elif client.mode == Mode.RATE_LIMITED and failed < client.fail_first:
            return Response(429, b"slow down\n", headers={"Retry-After": str(client.retry_after)})
        return None

    def _issue(self, client: SimClient) -> Response:
        token = secrets.token_urlsafe(32)
        with self.lock:
            if len(self.tokens) > 100_000:
                self.tokens.clear()
            self.tokens[token] = client.client_id
        body = {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
        # RFC 6749 §5.1: a token response MUST NOT be cached.
        no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        return Response(200, json.dumps(body).encode(), "application/json", no_store)

    def _bearer_client(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self.lock:
            return self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None

    def upload(self, request: Request) -> Response:
        client_id = self._bearer_client(request)
        if client_id is None:
            return _invalid_token()
        with self._counting(client_id) as stats:
            if "xml" not in request.headers.get("content-type", ""):
                return Response(415, b"expected PESC XML\n")
            try:
                # Dev-only and loopback-bound; expat >= 2.4 caps entity amplification.
                ET.fromstring(request.body)  # noqa: S314
            except ET.ParseError:
                return Response(400, b"not well-formed XML\n")
            with self.lock:
                stats.uploads += 1
            return _json({"documentId": str(uuid.uuid4())}, 202)

    def resource(self, request: Request) -> Response:
        client_id = self._bearer_client(request)
        if client_id is None:
            return _invalid_token()
        with self._counting(client_id):
            return _json({"transcripts": [], "next": None})
