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
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from erelease.errors import StateError
from erelease.model import INCOMING, TokenRecord
from erelease.serve._context import (
    REALM,
    SCOPE_CLIENT_KEY,
    ServeContext,
    remote_addr,
    sha256_hex,
)

__all__ = ["MAX_BODY_BYTES", "token_endpoint"]

#: A client-credentials request is a few hundred bytes; refuse anything near this.
MAX_BODY_BYTES = 16 * 1024
_MAX_FIELDS = 16
_MAX_ID = 128
_MAX_SECRET = 512
#: compared against when the client is unknown, so that path costs the same.
_DUMMY_DIGEST = sha256_hex("erelease: no such client")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1
_FORM = "application/x-www-form-urlencoded"
_CLIENT_ID_RE = re.compile(rf"^[A-Za-z0-9._~-]{{1,{_MAX_ID}}}$")


class _OAuthError(Exception):
    """An RFC 6749 §5.2 error response to send."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def _error_response(exc: _OAuthError) -> JSONResponse:
    headers = dict(_NO_STORE)
    if exc.status == 401:
        # RFC 6749 §5.2: 401 carries a challenge for the scheme the client can use;
        # RFC 7617 §2.1: charset tells the client to encode id:secret as UTF-8.
        headers["WWW-Authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _too_many(retry_after: int) -> JSONResponse:
    headers = dict(_NO_STORE)
    headers["Retry-After"] = str(retry_after)
    # RFC 6749 has no code for throttling; temporarily_unavailable (§4.1.2.1) says
    # "retry later", and the 429 status with Retry-After says when.
    body = {
        "error": "temporarily_unavailable",
        "error_description": "too many failed attempts; retry later",
    }
    return JSONResponse(body, status_code=429, headers=headers)


async def _read_body(request: Request) -> bytes:
    """The request body, refusing more than MAX_BODY_BYTES without buffering it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise _OAuthError("invalid_request", "Content-Length is not a number")
        if int(declared) > MAX_BODY_BYTES:
            raise _OAuthError(
                "invalid_request", f"request body is larger than {MAX_BODY_BYTES} bytes", 413
            )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _OAuthError(
                "invalid_request", f"request body is larger than {MAX_BODY_BYTES} bytes", 413
            )
        chunks.append(chunk)
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


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    """RFC 6749 §2.3: exactly one client authentication method per request."""
    if "client_secret" in request.query_params or "client_id" in request.query_params:
        # RFC 6749 §2.3.1: credentials MUST NOT be included in the request URI.
        raise _OAuthError("invalid_request", "client credentials must not be in the URL")
    headers = request.headers.getlist("authorization")
    if len(headers) > 1:
        raise _OAuthError("invalid_request", "more than one Authorization header")
    body_id = form.get("client_id")
    body_secret = form.get("client_secret")
    if headers:
        basic = _basic_credentials(headers[0])
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


def _authenticate(
    ctx: ServeContext, client_id: str, candidates: tuple[str, ...], app_name: str
) -> tuple[str, str]:
    """Check the credentials against the registry: (connection name, secret digest)."""
    record = None
    if _CLIENT_ID_RE.match(client_id) and all(len(c) <= _MAX_SECRET for c in candidates):
        record = ctx.store.find_client(stack=ctx.stack, client_id=client_id)
    expected = _DUMMY_DIGEST
    if record is not None and record.kind == INCOMING:
        stored = record.outputs.get("clientSecretSha256")
        if isinstance(stored, str) and stored:
            expected = stored
    # Constant time: compare digests of equal length whatever the input.
    secret_ok = False
    for secret in candidates:
        secret_ok |= hmac.compare_digest(sha256_hex(secret).encode(), expected.encode())
    app_ok = record is not None and hmac.compare_digest(
        app_name.encode("utf-8"), str(record.outputs.get("appName", "")).encode("utf-8")
    )
    if record is None or expected is _DUMMY_DIGEST or not (secret_ok and app_ok):
        raise _OAuthError("invalid_client", "client authentication failed", 401)
    return record.name, expected


async def token_endpoint(request: Request) -> Response:
    """``POST <basePath>/oauth2/token?appName=…`` (RFC 6749 §4.4.2, §5.1, §5.2)."""
    ctx: ServeContext = request.app.state.ctx
    now = ctx.clock()
    addr_key = "addr:" + remote_addr(request)
    wait = ctx.addr_throttle.retry_after(addr_key, now=now)
    if wait:
        return _too_many(wait)
    client_id: str | None = None
    try:
        body = await _read_body(request)
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != _FORM:
            raise _OAuthError("invalid_request", f"the body must be {_FORM}")
        form = _parse_form(body)
        app_names = request.query_params.getlist("appName")
        if len(app_names) != 1 or not app_names[0]:
            raise _OAuthError("invalid_request", "the appName query parameter is required once")
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise _OAuthError("invalid_request", "grant_type is required")
        client_id, candidates = _client_credentials(request, form)
        client_key = "client:" + client_id[:_MAX_ID]
        wait = ctx.client_throttle.retry_after(client_key, now=now)
        if wait:
            return _too_many(wait)
        connection, secret_digest = _authenticate(ctx, client_id, candidates, app_names[0])
        request.scope[SCOPE_CLIENT_KEY] = client_id
        if grant_type != "client_credentials":
            raise _OAuthError(
                "unsupported_grant_type", "only the client_credentials grant is supported"
            )
    except _OAuthError as exc:
        ctx.addr_throttle.failure(addr_key, now=now)
        if exc.error == "invalid_client" and client_id is not None:
            ctx.client_throttle.failure("client:" + client_id[:_MAX_ID], now=now)
        return _error_response(exc)
    except StateError:
        return _unavailable()

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
        ctx.store.store_token(stack=ctx.stack, token=issued)
    except StateError:
        return _unavailable()
    # token_urlsafe is [A-Za-z0-9_-]: nothing to escape, so the JSON is written directly.
    body_out = f'{{"access_token":"{token}","token_type":"Bearer","expires_in":{int(ttl)}}}'
    return Response(body_out.encode("ascii"), media_type="application/json", headers=_NO_STORE)


def _unavailable() -> JSONResponse:
    headers = dict(_NO_STORE)
    headers["Retry-After"] = "1"
    body = {
        "error": "temporarily_unavailable",
        "error_description": "the registry cannot be reached; retry shortly",
    }
    return JSONResponse(body, status_code=503, headers=headers)
