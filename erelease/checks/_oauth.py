"""RFC 6749 on the wire: building token requests and reading what comes back.

Pure functions over :class:`Reply` values, so every branch is unit-tested
without a server. The rules that decide a result:

* Client authentication (§2.3.1): HTTP Basic with the client id and secret
  each form-urlencoded *before* base64 — a secret holding ``:`` or ``%`` would
  otherwise be cut or misread — or both in the request body.
* Success (§5.1): HTTP 200, a JSON object, a non-empty ``access_token`` and a
  ``token_type`` of ``Bearer`` in any case (RFC 6750 §4, §6.1.1).
* Errors (§5.2): the JSON ``error`` code decides, with 400 or 401 alike:
  ``invalid_client`` and ``invalid_grant`` are reasons of their own; any other
  code is ``http_status`` with the code in the message.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlsplit

import httpx

from erelease.checks._outcome import CheckFailure, redact, sanitize
from erelease.checks._retry import parse_retry_after
from erelease.model import Secret

__all__ = [
    "Reply",
    "basic_authorization",
    "bearer_error",
    "check_resource_reply",
    "oauth_error",
    "parse_token_reply",
    "token_request",
    "transient_failure",
]

#: §5.2: error codes are %x20-21 / %x23-5B / %x5D-7E; anything else is not one.
_ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,100}")
_BEARER_ERROR = re.compile(r'error\s*=\s*"?([\x20\x21\x23-\x5b\x5d-\x7e]{1,100}?)"?(?:,|$)')


@dataclass(frozen=True)
class Reply:
    """An HTTP answer as read (body capped), detached from the connection."""

    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def content_type(self) -> str:
        value: str = self.headers.get("content-type", "")
        return value.split(";", 1)[0].strip().lower()

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or ``None`` (HTML, plain text, a list, …)."""
        if not self.body.lstrip().startswith(b"{"):
            return None
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


def basic_authorization(client_id: Secret | str, client_secret: Secret) -> str:
    """``Authorization`` value for RFC 6749 §2.3.1 HTTP Basic client authentication."""
    raw_id = client_id.reveal() if isinstance(client_id, Secret) else client_id
    user = quote_plus(raw_id, safe="")
    password = quote_plus(client_secret.reveal(), safe="")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def token_request(
    *,
    grant_type: str,
    client_auth: str,
    client_id: Secret | str,
    client_secret: Secret,
    username: Secret | None = None,
    password: Secret | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Form fields and headers of a token request (§4.3.2 password, §4.4.2 client).

    The caller sends the form as ``application/x-www-form-urlencoded``.
    """
    form = {"grant_type": grant_type}
    if grant_type == "password":
        if username is None or password is None:
            raise CheckFailure(
                "secret_unavailable",
                "the password grant needs a user name and a password; none was resolved",
            )
        form["username"] = username.reveal()
        form["password"] = password.reveal()
    headers = {"Accept": "application/json"}
    if client_auth == "basic":
        headers["Authorization"] = basic_authorization(client_id, client_secret)
    else:
        # §2.3.1 allows the body as the alternative to Basic; never both.
        form["client_id"] = client_id.reveal() if isinstance(client_id, Secret) else client_id
        form["client_secret"] = client_secret.reveal()
    return form, headers


def oauth_error(reply: Reply) -> tuple[str, str] | None:
    """(``error``, ``error_description``) of a §5.2 error body, sanitized; else ``None``."""
    data = reply.json_object()
    if data is None:
        return None
    code = data.get("error")
    if not isinstance(code, str) or not _ERROR_CODE.fullmatch(code):
        return None
    description = data.get("error_description")
    # Generous here: the runner redacts our secrets, then cuts the whole message.
    text = sanitize(description, 1000) if isinstance(description, str) else ""
    return code, text


def _is_html(reply: Reply) -> bool:
    head = reply.body.lstrip()[:15].lower()
    return reply.content_type == "text/html" or head.startswith((b"<!doctype html", b"<html"))


def _kind_of_body(reply: Reply) -> str:
    if not reply.body.strip():
        return "an empty body"
    if _is_html(reply):
        return "an HTML page"
    if reply.json_object() is not None:
        return "a JSON body"
    if reply.content_type == "application/json" or reply.content_type.endswith("+json"):
        return "a body that is not a JSON object"
    kind = reply.content_type or "untyped"
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} body"


def parse_token_reply(
    reply: Reply, where: str, *, client_words: str = "consumer key and secret"
) -> Secret:
    """The access token of a successful token reply, or :class:`CheckFailure`.

    ``where`` names the endpoint in messages, e.g. ``"token endpoint at
    vendor.example"``. The token is returned wrapped so it cannot be printed.
    A reply that fails can still carry tokens (an error body holding an
    ``access_token``, a ``token_type`` or ``error_description`` quoting one):
    they are redacted from the failure's message, which is printed and stored.
    """
    data = reply.json_object()
    try:
        return _read_token_reply(reply, data, where, client_words)
    except CheckFailure as failure:
        issued = [data.get(k) for k in _TOKEN_FIELDS] if data is not None else []
        raise failure.with_message(
            redact(failure.message, [v for v in issued if isinstance(v, str)])
        ) from None


#: Fields of a token reply (RFC 6749 §5.1, OpenID Connect) that hold credentials.
_TOKEN_FIELDS = ("access_token", "refresh_token", "id_token")


def _read_token_reply(
    reply: Reply, data: dict[str, Any] | None, where: str, client_words: str
) -> Secret:
    if reply.status == 200 and data is not None and "access_token" in data:
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise CheckFailure("bad_response", f"the {where} returned an empty access_token")
        token_type = data.get("token_type")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            # redacted before the cut, which would leave a prefix no redaction matches
            shown = (
                sanitize(redact(token_type, [token]), 40)
                if isinstance(token_type, str)
                else "missing"
            )
            raise CheckFailure(
                "bad_response",
                f"the {where} returned token_type {shown!r}; a Bearer token is required (RFC 6750)",
            )
        return Secret(token)
    error = oauth_error(reply)
    if error is not None:
        code, description = error
        detail = f"HTTP {reply.status} {code}" + (f": {description}" if description else "")
        if code == "invalid_client":
            raise CheckFailure(
                "invalid_client",
                f"the {where} rejected the client credentials ({detail}); check the {client_words}",
            )
        if code == "invalid_grant":
            raise CheckFailure(
                "invalid_grant",
                f"the {where} rejected the grant ({detail}); check the user name and password",
            )
        raise CheckFailure("http_status", f"the {where} answered {detail}")
    if reply.status == 200:
        if data is not None:
            raise CheckFailure(
                "bad_response", f"the {where} answered HTTP 200 without an access_token"
            )
        kind = _kind_of_body(reply)
        message = f"the {where} answered HTTP 200 with {kind}"
        message += "" if "JSON" in kind else " instead of JSON"
        if _is_html(reply):
            message += " (a login page? check the Auth Server and Auth Path)"
        raise CheckFailure("bad_response", message)
    raise CheckFailure("http_status", _status_message(reply, where))


def bearer_error(reply: Reply) -> str | None:
    """The ``error`` of an RFC 6750 §3 ``WWW-Authenticate: Bearer`` challenge."""
    challenge = reply.headers.get("www-authenticate", "")
    if not challenge.lower().startswith("bearer"):
        return None
    match = _BEARER_ERROR.search(challenge)
    return match.group(1) if match else None


def check_resource_reply(reply: Reply, where: str) -> None:
    """A protected resource (the eTranscripts URL) must answer 200 to a valid bearer token."""
    if reply.status == 200:
        return
    if reply.status in (401, 403):
        code = bearer_error(reply)
        if code is not None:
            raise CheckFailure(
                "http_status", f"the {where} answered HTTP {reply.status} {code} (RFC 6750 §3.1)"
            )
    raise CheckFailure("http_status", _status_message(reply, where))


def transient_failure(reply: Reply, where: str) -> CheckFailure | None:
    """A retryable failure for 429 and 5xx answers (honouring ``Retry-After``), else ``None``."""
    if reply.status != 429 and reply.status < 500:
        return None
    return CheckFailure(
        "http_status",
        _status_message(reply, where),
        retryable=True,
        retry_after=parse_retry_after(reply.headers.get("retry-after")),
    )


def _status_message(reply: Reply, where: str) -> str:
    message = f"the {where} answered HTTP {reply.status}"
    if 300 <= reply.status < 400:
        location = reply.headers.get("location", "")
        parts = urlsplit(location)
        # Scheme, host and path only: a redirect's query can carry state or codes,
        # and a user:password@ in front of the host is credentials.
        host = parts.netloc.rpartition("@")[2]
        if host or parts.path:
            target = sanitize(f"{parts.scheme}://{host}{parts.path}" if host else parts.path, 120)
            message += f", a redirect to {target}"
        return message + "; the URL should answer directly"
    if reply.status >= 400 and reply.body.strip():
        message += f" with {_kind_of_body(reply)}"
    return message
