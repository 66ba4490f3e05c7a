"""One HTTP call to Vault, with retries, turned into a sentence or a reply.

Every request erelease makes to Vault goes through :meth:`Transport.request`,
so this is the single place where library and HTTP failures become
:class:`~erelease.errors.SecretsError`. Requests are sent with hvac's
``raise_exception=False``: hvac never builds an exception holding a response
body (which can carry secret values), and the messages below are composed from
what *we* asked for (address, mount, path, key) and the HTTP status, never from
what Vault answered. The chained cause is a :class:`VaultHTTPError` that holds
only the method, API path and status, or the network error from requests
(which has no body in it).

Rate limiting (429) and server errors (5xx other than *sealed*) are retried
with exponential backoff and full jitter, a bounded number of times; a
``Retry-After`` header is honoured up to the same cap.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import hvac
import requests
import urllib3

from erelease.errors import PermissionDenied, SecretsError
from erelease.secrets.client import ClientConfig

__all__ = ["Reply", "Target", "Transport", "VaultHTTPError"]

log = logging.getLogger("erelease.secrets")

_RETRY_STATUSES = frozenset({412, 429, 500, 502, 503, 504})


class VaultHTTPError(Exception):
    """The sanitized cause of a SecretsError: method, API path and status only."""

    def __init__(self, method: str, api_path: str, status: int) -> None:
        super().__init__(f"{method.upper()} /v1/{api_path} -> HTTP {status}")
        self.status = status


@dataclass(frozen=True)
class Target:
    """What a request is about, in words for an error message (never a value)."""

    action: str  # "read", "read the metadata of", "write", "delete", ...
    what: str  # "secret/erelease/parchment (version 3)", "mount 'secret'", ...
    capability: str = "read"  # the policy capability the request needs


@dataclass(frozen=True)
class Reply:
    """A response Vault gave: its status and parsed JSON body (internal use only)."""

    status: int
    body: Mapping[str, Any]
    retry_after: float | None = None

    def errors(self) -> list[str]:
        """Vault's error strings, for classification only; never shown to a user."""
        raw = self.body.get("errors")
        return [str(e) for e in raw] if isinstance(raw, list) else []

    def mentions(self, text: str) -> bool:
        return any(text in e.lower() for e in self.errors())

    @property
    def data(self) -> Mapping[str, Any]:
        data = self.body.get("data")
        return data if isinstance(data, Mapping) else {}


class Transport:
    """Sends requests through an hvac client and maps every failure to a SecretsError.

    ``token_source`` names where the token came from (``BAO_TOKEN``, an AppRole
    login, ...) so that "invalid or expired" can say which one to fix.
    """

    def __init__(
        self,
        client: hvac.Client,
        config: ClientConfig,
        *,
        attempts: int = 5,
        backoff: float = 0.2,
        max_delay: float = 4.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.config = config
        self.token_source = "no token"
        self._attempts = max(attempts, 1)
        self._backoff = backoff
        self._max_delay = max_delay
        self._sleep = sleep
        self._token_valid: bool | None = None
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return self.config.describe()

    def set_token(self, token: str, source: str) -> None:
        self.client.token = token
        self.token_source = source
        self._token_valid = None

    # -- sending ---------------------------------------------------------------

    def _send(self, method: str, api_path: str, *, json: Any = None, params: Any = None) -> Reply:
        """One attempt; network failures become SecretsError, statuses become a Reply."""
        kwargs: dict[str, Any] = {"raise_exception": False}
        if json is not None:
            kwargs["json"] = json
        if params:
            kwargs["params"] = params
        failure: SecretsError | None = None
        cause: Exception | None = None
        try:
            response = self.client.adapter.request(method, f"/v1/{api_path}", **kwargs)
        except requests.exceptions.SSLError as exc:
            failure, cause = self._tls_failure(exc), exc
        except requests.exceptions.Timeout as exc:
            failure = SecretsError(
                f"{self.where} did not answer within {self.config.timeout:g}s "
                "(raise vault.timeout, or check the network path to Vault)"
            )
            cause = exc
        except requests.exceptions.ConnectionError as exc:
            failure, cause = self._connect_failure(exc), exc
        except requests.exceptions.InvalidHeader:
            # Its text quotes the header value, i.e. the token: never chained.
            failure = SecretsError(
                f"the Vault token from {self.token_source} (or the namespace) contains characters "
                "that cannot be sent in an HTTP header (a stray newline or space inside it?)"
            )
        except (requests.exceptions.RequestException, OSError, ValueError) as exc:
            # Not chained: a library's text may quote what we sent.
            failure = SecretsError(f"the request to {self.where} failed ({type(exc).__name__})")
        if failure is not None:
            raise failure from cause
        if isinstance(response, dict):
            return Reply(200, response)
        status = int(response.status_code)
        body: Any = {}
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = {}
        retry_after: float | None = None
        header = response.headers.get("Retry-After", "")
        if header.strip().isdigit():
            retry_after = float(header.strip())
        return Reply(status, body if isinstance(body, Mapping) else {}, retry_after)

    def _tls_failure(self, exc: Exception) -> SecretsError:
        text = repr(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            hint = (
                "set vault.caCert or BAO_CACERT/VAULT_CACERT to the CA that signed it"
                if "mismatch" not in text.lower()
                else "its name does not match the certificate; use the name it was issued for"
            )
            return SecretsError(f"the TLS certificate of {self.where} is not trusted ({hint})")
        return SecretsError(
            f"could not establish TLS with {self.where} "
            "(is it serving https on that port? for plain http use an http:// address)"
        )

    def _connect_failure(self, exc: requests.exceptions.ConnectionError) -> SecretsError:
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(reason, urllib3.exceptions.NameResolutionError):
            return SecretsError(
                f"cannot resolve the host name of {self.where} "
                "(check vault.address, BAO_ADDR or VAULT_ADDR)"
            )
        return SecretsError(
            f"cannot connect to {self.where}: connection refused or unreachable "
            "(is Vault running, and are vault.address, BAO_ADDR or VAULT_ADDR right?)"
        )

    def request(
        self,
        method: str,
        api_path: str,
        *,
        target: Target,
        json: Any = None,
        params: Any = None,
        accept: Collection[int] = (),
        retry: bool = True,
    ) -> Reply:
        """Send with retries; return a 2xx reply or one whose status is in ``accept``.

        Every other outcome raises one SecretsError naming the address and ``target``.
        """
        attempt = 0
        while True:
            reply = self._send(method, api_path, json=json, params=params)
            if reply.status < 300 or reply.status in accept:
                if reply.status < 300 and self._token_valid is None and self.client.token:
                    self._token_valid = True
                return reply
            sealed = reply.status == 503 and reply.mentions("sealed")
            attempt += 1
            if not retry or sealed or reply.status not in _RETRY_STATUSES:
                break
            if attempt >= self._attempts:
                break
            delay = self._delay(attempt, reply)
            log.debug(
                "%s %s: HTTP %d from Vault, retrying in %.2fs (attempt %d of %d)",
                method.upper(),
                api_path,
                reply.status,
                delay,
                attempt + 1,
                self._attempts,
            )
            self._sleep(delay)
        error = self._failure(reply, target, api_path, attempts=attempt)
        raise error from VaultHTTPError(method, api_path, reply.status)

    def _delay(self, attempt: int, reply: Reply) -> float:
        cap = min(self._max_delay, self._backoff * (1 << (attempt - 1)))
        delay = cap / 2 + random.uniform(0, cap / 2)
        if reply.retry_after is not None:
            delay = max(delay, min(reply.retry_after, self._max_delay))
        return delay

    # -- classification ----------------------------------------------------------

    def token_is_valid(self) -> bool:
        """Ask Vault whether the current token works (``lookup-self``; cached)."""
        with self._lock:
            if self._token_valid is None:
                reply = self._send("get", "auth/token/lookup-self")
                if reply.status < 300:
                    self._token_valid = True
                elif reply.status in (401, 403):
                    self._token_valid = False
                else:
                    return True  # cannot tell; do not claim it is invalid
            return self._token_valid

    def invalid_token(self) -> SecretsError:
        return SecretsError(
            f"the Vault token from {self.token_source} is invalid or expired for {self.where} "
            "(log in again, or check the namespace)"
        )

    def health(self) -> Mapping[str, Any]:
        """``sys/health`` (unauthenticated); empty if Vault cannot say."""
        try:
            reply = self._send(
                "get", "sys/health", params={"standbyok": "false", "perfstandbyok": "false"}
            )
        except SecretsError:
            return {}
        return reply.body

    def _failure(
        self, reply: Reply, target: Target, api_path: str, *, attempts: int
    ) -> SecretsError:
        status = reply.status
        subject = f"{target.action} {target.what}"
        if status in (401, 403):
            if not self.token_is_valid():
                return self.invalid_token()
            return PermissionDenied(
                f"permission denied on {self.where}: the policies of the token from "
                f"{self.token_source} do not grant {target.capability!r} on {api_path} "
                f"(needed to {subject})"
            )
        if status == 404 and reply.mentions("no handler for route"):
            return SecretsError(f"no secrets engine answers for {target.what} on {self.where}")
        if status == 404:
            return SecretsError(f"cannot {subject}: not found on {self.where}")
        if status in (501, 503) or status >= 500:
            return self._server_failure(status, subject, attempts)
        if status == 429:
            return SecretsError(
                f"{self.where} is rate-limiting requests (HTTP 429) and still refused to "
                f"{subject} after {attempts} attempts; try again later"
            )
        return SecretsError(f"{self.where} refused to {subject} (HTTP {status})")

    def _server_failure(self, status: int, subject: str, attempts: int) -> SecretsError:
        health = self.health()
        if health.get("sealed") is True:
            return SecretsError(
                f"{self.where} is sealed; an operator must unseal it before erelease can {subject}"
            )
        if health.get("initialized") is False:
            return SecretsError(f"{self.where} is not initialized")
        if health.get("standby") is True:
            return SecretsError(
                f"{self.where} is a standby node and could not reach the active node to "
                f"{subject}; point vault.address at the active node or the load balancer"
            )
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return SecretsError(
            f"{self.where} failed to {subject}: server error (HTTP {status}){tries}; "
            "try again, or ask the Vault operators"
        )
