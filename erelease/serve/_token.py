"""The Token URL: OAuth 2.0 client credentials grant (RFC 6749 §4.4).

The provider authenticates with the Client ID and Client Secret the district
shared, by HTTP Basic (RFC 6749 §2.3.1, RFC 7617) or in the form body, and gets
an opaque bearer token. Only SHA-256 digests of secrets and tokens are ever
compared or stored, and the comparison runs in constant time.

Decisions where the RFCs leave room, so that providers see one behaviour:

* An unknown client ID, a wrong secret, a connection of the wrong kind and a
  wrong ``appName`` all answer the same ``invalid_client`` 401, after the same
  work (a registry lookup and a digest comparison), so the response tells an
  attacker nothing about which client IDs exist.
* A missing ``appName`` is ``invalid_request``: it is part of the Token URL
  every client was given, and its absence reveals nothing about any client.
* Malformed requests (wrong content type, duplicated parameters, an
  ``Authorization`` header that is not valid Basic, two authentication methods)
  are ``invalid_request`` 400; a request with no client authentication at all,
  or another scheme, is ``invalid_client`` 401 (RFC 6749 §5.2).
* Authentication is checked before the grant type, so ``unsupported_grant_type``
  is only ever told to a client that proved who it is.

The endpoint is a plain ASGI application rather than a Starlette request
handler: it is the one URL a provider calls for every token, and building
Starlette's request and response objects and walking its middleware cost as
much as the OAuth checks themselves. ``_app`` routes ``POST`` on the Token
URL straight here; what it reads (the peer address, three headers, the query
string and the body) comes from the ASGI scope and messages, already parsed
by the server.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import re
import secrets
from urllib.parse import parse_qsl, unquote_plus

from starlette.types import Receive, Scope, Send

from erelease.errors import StateError
from erelease.model import INCOMING, TokenRecord
from erelease.serve._batch import StoresTokens, TokenBatcher
from erelease.serve._context import REALM, SCOPE_CLIENT_KEY, ServeContext, sha256_hex

__all__ = ["MAX_BODY_BYTES", "TokenEndpoint"]

#: A client-credentials request is a few hundred bytes; refuse anything near this.
MAX_BODY_BYTES = 16 * 1024
_MAX_FIELDS = 16
_MAX_ID = 128
_MAX_SECRET = 512
#: compared against when the client is unknown, so that path costs the same.
_DUMMY_DIGEST = sha256_hex("erelease: no such client")
_NO_STORE = ((b"cache-control", b"no-store"), (b"pragma", b"no-cache"))  # RFC 6749 §5.1
_JSON = (b"content-type", b"application/json")
_FORM = "application/x-www-form-urlencoded"
_CLIENT_ID_RE = re.compile(rf"^[A-Za-z0-9._~-]{{1,{_MAX_ID}}}$")


class _OAuthError(Exception):
    """An RFC 6749 §5.2 error response to send."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class _Disconnected(Exception):
    """The client went away before its request body arrived: nothing to answer."""


async def _respond(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    headers = [*extra, *_NO_STORE, (b"content-length", str(len(body)).encode()), _JSON]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _json(body: dict[str, str]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def _error_response(send: Send, exc: _OAuthError) -> None:
    body = _json({"error": exc.error, "error_description": exc.description})
    if exc.status == 401:
        # RFC 6749 §5.2: 401 carries a challenge for the scheme the client can use;
        # RFC 7617 §2.1: charset tells the client to encode id:secret as UTF-8.
        challenge = f'Basic realm="{REALM}", charset="UTF-8"'.encode()
        await _respond(send, 401, body, (b"www-authenticate", challenge))
    else:
        await _respond(send, exc.status, body)


async def _too_many(send: Send, retry_after: int) -> None:
    # RFC 6749 has no code for throttling; temporarily_unavailable (§4.1.2.1) says
    # "retry later", and the 429 status with Retry-After says when.
    body = {
        "error": "temporarily_unavailable",
        "error_description": "too many failed attempts; retry later",
    }
    await _respond(send, 429, _json(body), (b"retry-after", str(retry_after).encode()))


async def _unavailable(send: Send) -> None:
    body = {
        "error": "temporarily_unavailable",
        "error_description": "the registry cannot be reached; retry shortly",
    }
    await _respond(send, 503, _json(body), (b"retry-after", b"1"))


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """Every value of header ``name`` (lower case), decoded as HTTP does (latin-1)."""
    return [value.decode("latin-1") for key, value in headers if key == name]


async def _read_body(receive: Receive, declared: str | None) -> bytes:
    """The request body, refusing more than MAX_BODY_BYTES without buffering it."""
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise _OAuthError("invalid_request", "Content-Length is not a number")
        if int(declared) > MAX_BODY_BYTES:
            raise _OAuthError(
                "invalid_request", f"request body is larger than {MAX_BODY_BYTES} bytes", 413
            )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _OAuthError(
                "invalid_request", f"request body is larger than {MAX_BODY_BYTES} bytes", 413
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _parse_form(body: bytes) -> dict[str, str]:
    """RFC 6749 §3.2 / Appendix B: UTF-8 form encoding, each parameter at most once."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            encoding="utf-8",
            errors="strict",
            max_num_fields=_MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise _OAuthError("invalid_request", "the body is not a valid form") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            # RFC 6749 §3.1: parameters MUST NOT be included more than once.
            raise _OAuthError("invalid_request", f"parameter {name} is repeated")
        params[name] = value
    # RFC 6749 §3.1: parameters sent without a value are treated as omitted.
    return {k: v for k, v in params.items() if v != ""}


def _basic_credentials(header: str) -> tuple[str, tuple[str, ...]] | None:
    """Client ID and secret(s) from ``Authorization: Basic``; None for another scheme.

    RFC 6749 §2.3.1 has the client form-urlencode id and secret before Basic
    encoding, but many clients send them raw; a secret whose two readings differ
    (it holds ``%`` or ``+``) is checked both ways, which accepts nothing a
    holder of the secret could not send anyway.
    """
    scheme, _, param = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(param.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise _OAuthError("invalid_request", "the Basic credentials are not valid base64") from None
    user, sep, password = decoded.partition(":")  # RFC 7617 §2: split at the first colon
    if not sep:
        raise _OAuthError("invalid_request", "the Basic credentials have no ':' separator")
    readings = (unquote_plus(password), password)
    return unquote_plus(user), readings[:1] if readings[0] == readings[1] else readings


def _client_credentials(
    query: list[tuple[str, str]], authorization: list[str], form: dict[str, str]
) -> tuple[str, tuple[str, ...]]:
    """RFC 6749 §2.3: exactly one client authentication method per request."""
    if any(name in ("client_secret", "client_id") for name, _ in query):
        # RFC 6749 §2.3.1: credentials MUST NOT be included in the request URI.
        raise _OAuthError("invalid_request", "client credentials must not be in the URL")
    if len(authorization) > 1:
        raise _OAuthError("invalid_request", "more than one Authorization header")
    body_id = form.get("client_id")
    body_secret = form.get("client_secret")
    if authorization:
        basic = _basic_credentials(authorization[0])
        if basic is None:
            raise _OAuthError(
                "invalid_client", "use HTTP Basic or client_id/client_secret in the body", 401
            )
        if body_secret is not None or (body_id is not None and body_id != basic[0]):
            raise _OAuthError(
                "invalid_request", "use either HTTP Basic or the body to authenticate, not both"
            )
        return basic
    if body_id is None and body_secret is None:
        raise _OAuthError("invalid_client", "client authentication is required", 401)
    if body_id is None:
        raise _OAuthError("invalid_request", "client_secret without client_id")
    if body_secret is None:
        raise _OAuthError("invalid_client", "client authentication is required", 401)
    return body_id, (body_secret,)


def _addr_key(host: str) -> str:
    """The throttling key of a peer: its IPv4 address, or the /64 of an IPv6 one.

    An IPv6 end site holds at least a whole /64 (RFC 6177; the low 64 bits are
    the interface ID, RFC 4291 §2.5.1), so counting each /128 apart would let
    a single caller step around the limit by changing addresses.
    """
    if ":" not in host:
        return "addr:" + host
    try:
        address = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return "addr:" + host
    if address.ipv4_mapped is not None:
        return "addr:" + str(address.ipv4_mapped)
    return "addr:" + str(ipaddress.IPv6Network((address, 64), strict=False))


def _authenticate(
    ctx: ServeContext, client_id: str, candidates: tuple[str, ...], app_name: str
) -> tuple[str, str]:
    """Check the credentials against the registry: (connection name, secret digest)."""
    found = None
    if _CLIENT_ID_RE.match(client_id) and all(len(c) <= _MAX_SECRET for c in candidates):
        found = ctx.client_auth(ctx.stack, client_id)
    expected = _DUMMY_DIGEST
    if found is not None and found[0] == INCOMING:
        stored = found[2]
        if isinstance(stored, str) and stored:
            expected = stored
    # Constant time: compare digests of equal length whatever the input.
    secret_ok = False
    for secret in candidates:
        secret_ok |= hmac.compare_digest(sha256_hex(secret).encode(), expected.encode())
    app_ok = found is not None and hmac.compare_digest(
        app_name.encode("utf-8"), str(found[3]).encode("utf-8")
    )
    if found is None or expected is _DUMMY_DIGEST or not (secret_ok and app_ok):
        raise _OAuthError("invalid_client", "client authentication failed", 401)
    return found[1], expected


class TokenEndpoint:
    """``POST <basePath>/oauth2/token?appName=…`` (RFC 6749 §4.4.2, §5.1, §5.2), as ASGI."""

    def __init__(self, ctx: ServeContext) -> None:
        self.ctx = ctx
        store = ctx.store
        self.batcher = TokenBatcher(ctx, store) if isinstance(store, StoresTokens) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = self.ctx
        now = ctx.clock()
        peer = scope.get("client")
        addr_key = _addr_key(peer[0] if peer else "")
        wait = ctx.addr_throttle.retry_after(addr_key, now=now)
        if wait:
            await _too_many(send, wait)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        client_id: str | None = None
        try:
            declared = _header(headers, b"content-length")
            body = await _read_body(receive, declared[0] if declared else None)
            content_type = (_header(headers, b"content-type") or [""])[0]
            if content_type.split(";", 1)[0].strip().lower() != _FORM:
                raise _OAuthError("invalid_request", f"the body must be {_FORM}")
            form = _parse_form(body)
            # as Starlette reads a query string: latin-1 bytes, UTF-8 percent-escapes
            query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            app_names = [value for name, value in query if name == "appName"]
            if len(app_names) != 1 or not app_names[0]:
                raise _OAuthError("invalid_request", "the appName query parameter is required once")
            grant_type = form.get("grant_type")
            if grant_type is None:
                raise _OAuthError("invalid_request", "grant_type is required")
            client_id, candidates = _client_credentials(
                query, _header(headers, b"authorization"), form
            )
            wait = ctx.client_throttle.retry_after("client:" + client_id[:_MAX_ID], now=now)
            if wait:
                await _too_many(send, wait)
                return
            connection, secret_digest = _authenticate(ctx, client_id, candidates, app_names[0])
            scope[SCOPE_CLIENT_KEY] = client_id
            if grant_type != "client_credentials":
                raise _OAuthError(
                    "unsupported_grant_type", "only the client_credentials grant is supported"
                )
        except _OAuthError as exc:
            ctx.addr_throttle.failure(addr_key, now=now)
            if exc.error == "invalid_client" and client_id is not None:
                ctx.client_throttle.failure("client:" + client_id[:_MAX_ID], now=now)
            await _error_response(send, exc)
            return
        except StateError:
            await _unavailable(send)
            return
        except _Disconnected:
            return
        await self._issue(send, client_id, connection, secret_digest, now)

    async def _issue(
        self, send: Send, client_id: str, connection: str, secret_digest: str, now: float
    ) -> None:
        ctx = self.ctx
        token = secrets.token_urlsafe(32)  # 256 bits: RFC 6749 §10.10, unguessable
        ttl = ctx.settings.serve.token_ttl
        issued = TokenRecord(
            token_sha256=sha256_hex(token),
            client_id=client_id,
            connection=connection,
            # the digest the token was issued against: a rotation changes it, and
            # lookup_token then refuses the token (SPEC §6, revocation at once)
            secret_sha256=secret_digest,
            expires_at=now + ttl,
        )
        try:
            if self.batcher is not None:
                await self.batcher.store_token(issued)
            else:
                with ctx.writing():
                    ctx.store.store_token(stack=ctx.stack, token=issued)
        except StateError:
            await _unavailable(send)
            return
        # token_urlsafe is [A-Za-z0-9_-]: nothing to escape, so the JSON is written directly.
        body = f'{{"access_token":"{token}","token_type":"Bearer","expires_in":{int(ttl)}}}'
        await _respond(send, 200, body.encode("ascii"))
