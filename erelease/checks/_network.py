"""Name resolution, the address policy, TLS trust, and the upload-server probe.

Requests must never reach link-local or cloud metadata addresses (SPEC §5.5):
a connection's URLs come from a config file that a pull request can change, and
``169.254.169.254`` hands out cloud credentials to anyone who asks. Checking
the name and then letting the HTTP library resolve it again would let a DNS
answer change in between (rebinding), so every host is resolved here, *all*
its addresses are checked, and the connection is then made to one of exactly
those addresses (see :mod:`erelease.checks._http`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import os
import socket
import ssl
from pathlib import Path

import certifi

from erelease.checks._outcome import CheckFailure, Stage
from erelease.errors import ConfigError

__all__ = [
    "FORBIDDEN_NETWORKS",
    "Resolver",
    "build_ssl_context",
    "check_addresses",
    "describe_os_error",
    "describe_ssl_error",
    "find_ssl_error",
    "hostport",
    "is_forbidden",
    "probe_upload",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Link-local ranges (which hold the AWS/GCP/Azure/OpenStack metadata service at
#: 169.254.169.254) plus the metadata addresses that live outside them.
FORBIDDEN_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),  # IPv4 link-local, RFC 3927
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local, RFC 4291 §2.5.6
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS metadata over IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud metadata
)


#: IPv6 prefixes whose last 32 bits are an IPv4 address a translator reaches:
#: the NAT64 well-known prefix (RFC 6052 §2.1) and IPv4-compatible addresses
#: (RFC 4291 §2.5.5.1, deprecated but still routed by some stacks).
_EMBEDDED_IPV4: tuple[ipaddress.IPv6Network, ...] = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("::/96"),
)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the known forms."""
    if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d, RFC 4291 §2.5.5.2
        return ip.ipv4_mapped
    if ip.sixtofour is not None:  # 2002:AABB:CCDD::/48, RFC 3056 §2
        return ip.sixtofour
    if any(ip in net for net in _EMBEDDED_IPV4) and int(ip) & 0xFFFFFFFF > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@functools.lru_cache(maxsize=4096)
def is_forbidden(address: str | IPAddress) -> bool:
    """True for an address tests must never connect to.

    IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible,
    NAT64, 6to4) are judged by that IPv4 address as well.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
            candidates = [ip]
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            candidates.append(embedded)
    return any(
        candidate.version == net.version and candidate in net
        for candidate in candidates
        for net in FORBIDDEN_NETWORKS
    )


def check_addresses(host: str, addresses: list[str]) -> None:
    """Refuse the host if *any* of its addresses is forbidden (reason ``connect``)."""
    for address in addresses:
        if is_forbidden(address):
            literal = host == address or _literal(host) is not None
            where = host if literal else f"{host} (it resolves to {address})"
            raise CheckFailure(
                "connect",
                f"refused to connect to {where}: link-local and cloud metadata addresses "
                "(169.254.0.0/16, fe80::/10) are never contacted",
            )


@functools.lru_cache(maxsize=4096)
def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


class Resolver:
    """Resolves each host once per run and checks every answer against the policy.

    Tests of the same vendor share one lookup; a failed lookup is not cached,
    so a retry asks again.
    """

    def __init__(self) -> None:
        self._lookups: dict[tuple[str, int], asyncio.Task[list[str]]] = {}

    async def resolve(self, host: str, port: int) -> list[str]:
        literal = _literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            key = (host.lower(), port)
            task = self._lookups.get(key)
            if task is None or (task.done() and (task.cancelled() or task.exception())):
                task = asyncio.ensure_future(self._lookup(host, port))
                task.add_done_callback(_consume)
                self._lookups[key] = task
            # Shielded: one test hitting its deadline must not cancel a lookup
            # that other tests of the same vendor are waiting for.
            addresses = await asyncio.shield(task)
        check_addresses(host, addresses)
        return addresses

    @staticmethod
    async def _lookup(host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise CheckFailure(
                "dns",
                f"cannot resolve {host} ({exc.strerror or 'no address'})",
                retryable=exc.errno == socket.EAI_AGAIN,
            ) from None
        except (UnicodeError, OSError) as exc:
            raise CheckFailure("dns", f"cannot resolve {host} ({describe_os_error(exc)})") from None
        addresses: list[str] = []
        for info in infos:
            address = str(info[4][0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise CheckFailure("dns", f"cannot resolve {host} (no address)")
        return addresses


def _consume(task: asyncio.Task[list[str]]) -> None:
    """Mark a lookup's exception as seen even if every waiter gave up."""
    if not task.cancelled():
        task.exception()


def build_ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Verification on: the system store (else certifi's), plus the district's extra CA.

    ``ca_bundle`` (``tests.caBundle``) adds to the default trust; it replaces
    nothing. A file or a directory of hashed certificates both work.
    """
    context = ssl.create_default_context()
    if not context.cert_store_stats()["x509_ca"]:
        # No system store loaded (or only a lazy directory): add the bundle httpx
        # itself would use, so public vendor certificates verify everywhere.
        context.load_verify_locations(cafile=certifi.where())
    if ca_bundle:
        path = Path(ca_bundle).expanduser()
        try:
            if path.is_dir():
                context.load_verify_locations(capath=str(path))
            else:
                context.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not PEM"
            raise ConfigError(f"tests.caBundle: cannot load {path} ({detail})") from exc
    return context


def find_ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The :class:`ssl.SSLError` behind a wrapped transport error, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def describe_ssl_error(error: ssl.SSLError) -> str:
    """The part of a TLS failure an admin can act on, e.g. "self-signed certificate"."""
    if isinstance(error, ssl.SSLCertVerificationError) and error.verify_message:
        return f"certificate verify failed: {error.verify_message}"
    return str(error.reason or error.strerror or "handshake failed").lower().replace("_", " ")


def describe_os_error(exc: BaseException, *, default: str = "connection failed") -> str:
    """``Connection refused``-style text from the first OS error behind ``exc``."""
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return describe_ssl_error(current)  # its errno is OpenSSL's, not the OS's
        if isinstance(current, OSError) and current.errno and current.errno > 0:
            # asyncio's strerror is "Connect call failed (...)"; the errno says why.
            return os.strerror(current.errno)
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return default


def hostport(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def probe_upload(
    host: str,
    port: int,
    *,
    tls: bool,
    ssl_context: ssl.SSLContext,
    resolver: Resolver,
    stage: Stage,
) -> None:
    """Open a TCP connection (and a TLS session) to the upload server, send nothing.

    Failures are ``upload_unreachable`` with a message starting ``tcp:`` or
    ``tls:``; refused connections are retryable, certificate problems are not.
    """
    stage.enter("upload_unreachable", f"tcp: no DNS answer for upload server {host}")
    try:
        addresses = await resolver.resolve(host, port)
    except CheckFailure as failure:
        if failure.reason != "dns":
            raise
        raise CheckFailure(
            "upload_unreachable",
            f"tcp: {failure.message} (upload server)",
            retryable=failure.retryable,
        ) from None
    where = hostport(host, port)
    last: OSError | None = None
    for address in addresses:
        stage.enter("upload_unreachable", f"tcp: upload server {where} did not accept a connection")
        try:
            sock = await _connect(address, port)
        except OSError as exc:
            last = exc
            continue
        if not tls:
            sock.close()
            return
        stage.enter("upload_unreachable", f"tls: no TLS handshake with {where}")
        _, writer = await asyncio.open_connection(sock=sock)
        try:
            await writer.start_tls(ssl_context, server_hostname=host)
        except ssl.SSLError as exc:
            message = f"tls: {where}: {describe_ssl_error(exc)}"
            raise CheckFailure("upload_unreachable", message) from None
        except OSError as exc:
            raise CheckFailure(
                "upload_unreachable",
                f"tls: {where} closed the connection during the handshake "
                f"({describe_os_error(exc)}); is it serving TLS?",
            ) from None
        finally:
            await _close(writer)
        return
    raise CheckFailure(
        "upload_unreachable",
        f"tcp: cannot connect to upload server {where} "
        f"({describe_os_error(last) if last else 'no address'})",
        retryable=True,
    )


async def _connect(address: str, port: int) -> socket.socket:
    """A connected non-blocking TCP socket (cheaper than a stream for a bare probe)."""
    info = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    family, kind, proto, _, sockaddr = info[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        # A TLS close waits for the peer's close_notify; do not wait long for it.
        await asyncio.wait_for(writer.wait_closed(), timeout=1.0)
    except (TimeoutError, OSError, ssl.SSLError):
        with contextlib.suppress(Exception):
            writer.transport.abort()
