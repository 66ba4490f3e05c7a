"""HTTP requests pinned to addresses the policy has approved.

httpx would resolve a URL's host again by itself; instead the URL's host is
replaced by an address :class:`~erelease.checks._network.Resolver` returned,
while the ``Host`` header and the TLS server name (SNI, and the name the
certificate is verified against) stay the original host name. Because the
connection pool is keyed by address, each host name gets its own client:
two names sharing an address never share a TLS session verified for the other.
Clients belong to a concurrency slot (see :class:`Clients`), never shared
between two tests running at the same time.

Clients ignore the environment (no proxy variables, no ``~/.netrc`` credentials
attached to vendor requests), keep no cookies between tests, do not follow
redirects (a token endpoint that redirects is misconfigured), and read at most
:data:`MAX_BODY` bytes of any answer.
"""

from __future__ import annotations

import functools
import http.cookiejar
import ssl
from collections import OrderedDict
from collections.abc import Mapping

import httpx

from erelease import __version__
from erelease.checks._network import (
    Resolver,
    describe_os_error,
    describe_ssl_error,
    find_ssl_error,
)
from erelease.checks._oauth import Reply, transient_failure
from erelease.checks._outcome import CheckFailure, Stage

__all__ = ["MAX_BODY", "Clients", "describe_url", "send"]

#: A token answer is a few hundred bytes; a megabyte is plenty for any error page.
MAX_BODY = 1024 * 1024
USER_AGENT = f"erelease/{__version__} (connectivity test)"


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    def set_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False


class Clients:
    """The HTTP clients of one concurrency slot: one per (scheme, host, port).

    A slot runs one test at a time, so each client needs a single connection,
    kept alive between the tests the slot runs. Small private pools are much
    cheaper than one shared pool of ``concurrency`` connections, whose
    bookkeeping grows with the square of its size. At most :attr:`keep`
    clients stay open; the least recently used one is closed beyond that.
    """

    keep = 8

    def __init__(self, *, ssl_context: ssl.SSLContext, timeout: float) -> None:
        self._ssl_context = ssl_context
        # A backstop only: the runner's per-test deadline (set to the same
        # timeout) normally fires first and says which step was slow.
        self._timeout = httpx.Timeout(timeout + 1.0)
        self._clients: OrderedDict[tuple[str, str, int], httpx.AsyncClient] = OrderedDict()

    async def get(self, scheme: str, host: str, port: int) -> httpx.AsyncClient:
        key = (scheme, host.lower(), port)
        client = self._clients.get(key)
        if client is not None:
            self._clients.move_to_end(key)
            return client
        while len(self._clients) >= self.keep:
            _, oldest = self._clients.popitem(last=False)
            await oldest.aclose()
        client = httpx.AsyncClient(
            verify=self._ssl_context,
            trust_env=False,
            follow_redirects=False,
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            cookies=http.cookiejar.CookieJar(policy=_NoCookies()),
            headers={"User-Agent": USER_AGENT},
        )
        self._clients[key] = client
        return client

    async def aclose(self) -> None:
        while self._clients:
            _, client = self._clients.popitem()
            await client.aclose()


@functools.lru_cache(maxsize=1024)
def describe_url(url: str) -> str:
    """``host[:port]/path`` for messages: no scheme noise, no query (it may carry state)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "an invalid URL"
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    host += f":{parsed.port}" if parsed.port else ""
    return host + (parsed.path if parsed.path != "/" else "")


async def send(
    method: str,
    url: str,
    *,
    clients: Clients,
    resolver: Resolver,
    stage: Stage,
    where: str,
    headers: Mapping[str, str],
    form: Mapping[str, str] | None = None,
) -> Reply:
    """One request (no retries); 429 and 5xx raise a retryable :class:`CheckFailure`.

    ``where`` names the endpoint in messages ("token endpoint at vendor.example").
    """
    origin = _origin(url)
    if origin is None:
        raise CheckFailure(
            "connect", f"cannot test the {where}: not an http:// or https:// URL with a host"
        )
    scheme, host, port, netloc = origin
    stage.enter("dns", f"no DNS answer for {host}")
    addresses = await resolver.resolve(host, port)
    client = await clients.get(scheme, host, port)
    request_headers = {**headers, "Host": netloc}
    extensions = {"sni_hostname": host} if scheme == "https" else {}
    last: Exception | None = None
    for address in addresses:
        stage.enter("timeout", f"no answer from the {where}")
        try:
            reply = await _exchange(
                client, method, _pinned(url, address), request_headers, form, extensions
            )
        except httpx.ConnectError as exc:
            tls = find_ssl_error(exc)
            if tls is not None:
                raise CheckFailure(
                    "tls", f"TLS with the {where} failed: {describe_ssl_error(tls)}"
                ) from None
            last = exc
            continue  # the next address of the same host, like happy eyeballs without the race
        except httpx.TimeoutException:
            raise CheckFailure("timeout", f"no answer from the {where} in time") from None
        except httpx.TransportError as exc:
            tls = find_ssl_error(exc)
            if tls is not None:
                raise CheckFailure(
                    "tls", f"TLS with the {where} failed: {describe_ssl_error(tls)}"
                ) from None
            raise CheckFailure(
                "connect",
                f"the connection to the {where} broke before an answer ({_broken(exc)})",
                retryable=True,
            ) from None
        failure = transient_failure(reply, where)
        if failure is not None:
            raise failure
        return reply
    detail = describe_os_error(last) if last is not None else "no address"
    raise CheckFailure("connect", f"cannot connect to the {where} ({detail})", retryable=True)


def _broken(exc: httpx.TransportError) -> str:
    """Why a connection broke, in words (not an exception class name)."""
    if isinstance(exc, httpx.RemoteProtocolError):
        if "without sending" in str(exc) or "disconnected" in str(exc).lower():
            return "the server closed the connection without answering"
        return "the answer was not valid HTTP/1.1"
    return describe_os_error(exc, default=type(exc).__name__)


async def _exchange(
    client: httpx.AsyncClient,
    method: str,
    url: httpx.URL,
    headers: Mapping[str, str],
    form: Mapping[str, str] | None,
    extensions: dict[str, str],
) -> Reply:
    async with client.stream(
        method, url, headers=headers, data=form, extensions=extensions
    ) as response:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_BODY:
                del body[MAX_BODY:]
                break
        return Reply(status=response.status_code, headers=response.headers, body=bytes(body))


@functools.lru_cache(maxsize=1024)
def _origin(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, ASCII host, port, Host header) of an http(s) URL, or ``None``."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        return None
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.scheme, parsed.raw_host.decode("ascii"), port, parsed.netloc.decode("ascii")


@functools.lru_cache(maxsize=1024)
def _pinned(url: str, address: str) -> httpx.URL:
    """``url`` with its host replaced by ``address`` (the same URL for every test of a vendor)."""
    return httpx.URL(url).copy_with(host=address)
