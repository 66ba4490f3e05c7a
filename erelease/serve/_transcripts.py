"""The eTranscripts URL: bearer-protected listing and download of PESC transcripts.

Every request is authorised by reading the registry (RFC 6750 bearer token →
its digest → ``store.lookup_token``), which also checks that the connection
still exists with the same client ID and secret digest; that is what makes a
delete or a rotation cut a provider off at once on every replica.

Every transcript released is appended to the record of disclosures *before*
the bytes are sent: if the registry cannot record the disclosure, the
transcript is not released (FERPA, 34 CFR §99.32).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from erelease.errors import StateError
from erelease.model import Disclosure, TokenRecord
from erelease.serve._context import REALM, SCOPE_CLIENT_KEY, ServeContext, remote_addr, sha256_hex
from erelease.serve._index import BadCursor
from erelease.serve._pesc import parse_datetime

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "get_transcript", "list_transcripts"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN_RE = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
_MAX_TOKEN = 512
_NO_STORE = {"Cache-Control": "no-store"}


class _BearerError(Exception):
    """An RFC 6750 §3 challenge to send; ``error`` None means "no credentials"."""

    def __init__(self, status: int, error: str | None, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def _challenge(exc: _BearerError) -> JSONResponse:
    challenge = f'Bearer realm="{REALM}"'
    body: dict[str, Any] = {"error": exc.error or "unauthorized"}
    if exc.error is not None:
        # RFC 6750 §3: error and error_description attributes; §3.1 codes.
        challenge += f', error="{exc.error}", error_description="{exc.description}"'
        body["error_description"] = exc.description
    headers = {"WWW-Authenticate": challenge, **_NO_STORE}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _bad_request(description: str) -> JSONResponse:
    body = {"error": "invalid_request", "error_description": description}
    return JSONResponse(body, status_code=400, headers=_NO_STORE)


def _unavailable() -> JSONResponse:
    body = {"error": "temporarily_unavailable", "error_description": "registry unavailable"}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "1", **_NO_STORE})


def _authorize(request: Request, ctx: ServeContext) -> TokenRecord:
    """RFC 6750 §2.1 bearer authentication; raises _BearerError (or StateError)."""
    if "access_token" in request.query_params:
        # RFC 6750 §2.3 (token in the URI) is not offered: URLs end up in logs.
        raise _BearerError(400, "invalid_request", "send the token in the Authorization header")
    headers = request.headers.getlist("authorization")
    if not headers:
        # RFC 6750 §3.1: no authentication information → no error code.
        raise _BearerError(401, None, "")
    if len(headers) > 1:
        raise _BearerError(400, "invalid_request", "more than one Authorization header")
    scheme, _, token = headers[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        # Another scheme carries no bearer credentials: challenge without an error code.
        raise _BearerError(401, None, "")
    token = token.strip()
    if not token or len(token) > _MAX_TOKEN or not _B64TOKEN_RE.match(token):
        raise _BearerError(400, "invalid_request", "malformed bearer token")
    record = ctx.store.lookup_token(
        stack=ctx.stack, token_sha256=sha256_hex(token), now=ctx.clock()
    )
    if record is None:
        raise _BearerError(401, "invalid_token", "the access token is invalid, expired or revoked")
    request.scope[SCOPE_CLIENT_KEY] = record.client_id
    return record


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    # isdigit alone admits "²" and other Unicode digits that int() refuses
    if not (raw.isascii() and raw.isdigit()):
        raise ValueError("limit must be a positive integer")
    digits = raw.lstrip("0")
    if not digits:
        raise ValueError("limit must be a positive integer")
    # thousands of digits would make int() refuse too; anything that long is "a lot"
    return MAX_LIMIT if len(digits) > 6 else min(int(digits), MAX_LIMIT)


def _since(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        return parse_datetime(raw)
    except ValueError:
        raise ValueError("since must be an ISO 8601 date or date-time") from None


async def list_transcripts(request: Request) -> Response:
    """``GET …/eTranscripts``: ``{"items": [...], "next": cursor|null}``."""
    ctx: ServeContext = request.app.state.ctx
    try:
        _authorize(request, ctx)
    except _BearerError as exc:
        return _challenge(exc)
    except StateError:
        return _unavailable()
    params = request.query_params
    try:
        limit = _limit(params.get("limit"))
        since = _since(params.get("since"))
    except ValueError as exc:
        return _bad_request(str(exc))
    ctx.index.refresh()
    try:
        page, next_cursor = ctx.index.page(since=since, cursor=params.get("cursor"), limit=limit)
    except BadCursor as exc:
        return _bad_request(str(exc))
    base = ctx.transcripts_url
    items = [
        {
            "documentId": entry.info.document_id,
            "createdDateTime": entry.info.created_text,
            "href": f"{base}/{quote(entry.info.document_id, safe='')}",
        }
        for entry in page
    ]
    return JSONResponse({"items": items, "next": next_cursor}, headers=_NO_STORE)


async def get_transcript(request: Request) -> Response:
    """``GET …/eTranscripts/<documentId>``: the PESC XML, recorded as a disclosure."""
    ctx: ServeContext = request.app.state.ctx
    try:
        token = _authorize(request, ctx)
    except _BearerError as exc:
        return _challenge(exc)
    except StateError:
        return _unavailable()
    document_id: str = request.path_params["document_id"]
    # The ID is only ever a key into the index: it never becomes a path.
    ctx.index.refresh()
    found = ctx.index.read(document_id)
    if found is None:
        body = {"error": "not_found", "error_description": "no transcript with that documentId"}
        return JSONResponse(body, status_code=404, headers=_NO_STORE)
    info, data = found
    if request.method == "HEAD":
        # HEAD releases nothing, so it is not a disclosure.
        return Response(None, media_type="application/xml", headers=_NO_STORE)
    disclosure = Disclosure(
        connection=token.connection,
        client_id=token.client_id,
        document_id=info.document_id,
        released_at=utc_now_text(),
        remote_addr=remote_addr(request),
    )
    try:
        with ctx.writing():
            ctx.store.record_disclosure(stack=ctx.stack, disclosure=disclosure)
    except StateError:
        return _unavailable()
    return Response(data, media_type="application/xml", headers=_NO_STORE)


def utc_now_text() -> str:
    """The disclosure timestamp format: ISO 8601 UTC, milliseconds, ``Z``.

    One fixed format so that string order is time order in both backends.
    """
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
