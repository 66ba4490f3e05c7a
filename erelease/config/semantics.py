"""The rules a JSON Schema cannot say well: URLs, paths and secret references.

Each check takes one already type-checked value and returns its normal form
(what the registry stores and plans compare) or a message. Messages never
repeat a value that may hold a secret: a server URL with ``user:pass@`` in it
is described, not quoted.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

from erelease.model import SecretRef, is_ref, parse_ref

__all__ = [
    "Checked",
    "check_app_name",
    "check_path",
    "check_ref",
    "check_server",
    "is_loopback",
    "unsupported_ref",
]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
# RFC 1123 host names; "_" is tolerated inside a label, as many internal DNS zones use it.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?")
_DEFAULT_PORTS = {"https": 443, "http": 80}
_APP_NAME = re.compile(r"[A-Za-z0-9._~-]+")  # RFC 3986 unreserved: safe in a query string
_SPACE = re.compile(r"\s")
_CLEAN_PATH = re.compile(r"/(?!/)[^\s#]*")  # already normal: one leading "/", no space or "#"
# The everyday server, already in normal form but for a trailing "/" or an explicit port.
_HOST = r"(?:[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?"
_CLEAN_HTTPS = re.compile(rf"https://({_HOST})(?::([0-9]{{1,5}}))?/?")
# The everyday reference: ref+vault://<mount>/<path>#<key>, plain segments, no query. For
# these parse_ref's answer is known; anything else (and any doubt) goes to parse_ref itself.
_SIMPLE_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9._-]*"
_SIMPLE_REF = re.compile(
    rf"ref\+(vault|openbao)://({_SIMPLE_SEGMENT})/((?:{_SIMPLE_SEGMENT}/)*{_SIMPLE_SEGMENT})"
    r"(?:#([A-Za-z0-9._-]+))?"
)


class Checked(NamedTuple):
    """The normal form of a value, or why it is wrong (and, for servers, the port it named)."""

    value: str | SecretRef | None = None
    error: str | None = None
    warning: str | None = None
    port: int | None = None


def check_ref(text: str, *, require_key: bool = True) -> Checked:
    """A ``ref+vault://`` / ``ref+openbao://`` reference, parsed by :func:`parse_ref`."""
    simple = _SIMPLE_REF.fullmatch(text)
    if simple is not None:
        scheme, mount, path, key = simple.groups()
        if not path.startswith(("data/", "metadata/")) and (key is not None or not require_key):
            return Checked(value=SecretRef(mount=mount, path=path, key=key, scheme=scheme))
    if _SPACE.search(text):
        return Checked(error="invalid secret reference: it must not contain spaces or line breaks")
    try:
        return Checked(value=parse_ref(text, require_key=require_key))
    except ValueError as exc:
        return Checked(error=f"invalid secret reference: {exc}")


def unsupported_ref(text: str) -> str | None:
    """A message for ``ref+sops://…`` and friends, which erelease cannot resolve."""
    if text.startswith("ref+") and not is_ref(text):
        return "only ref+vault:// and ref+openbao:// secret references are supported"
    return None


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _valid_host(host: str) -> bool:
    if not host or len(host) > 253:
        return False
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    return all(_LABEL.fullmatch(label) for label in labels)


def check_server(text: str, *, allow_http: bool, path_field: str) -> Checked:
    """``scheme://host[:port]`` with no path, query, fragment or userinfo → its normal form.

    Normal form: lowercase scheme and host, no trailing slash, default port
    dropped (RFC 3986 §6.2.2.1 and §6.2.3).
    """
    clean = _CLEAN_HTTPS.fullmatch(text)
    if clean is not None and len(clean.group(1)) <= 253:
        host, digits = clean.groups()
        named = None if digits is None else int(digits)
        if named is None or named == 443:
            return Checked(value="https://" + host, port=named)
        if 1 <= named <= 65535:
            return Checked(value=f"https://{host}:{named}", port=named)
    if _SPACE.search(text):
        return Checked(error="must not contain spaces or line breaks")
    match = _SCHEME.match(text)
    if match is None:
        return Checked(error="must be scheme://host[:port], e.g. https://api.vendor.example")
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme not in _DEFAULT_PORTS:
        return Checked(error=f'the scheme "{scheme}" is not supported; use https://')
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority:
        return Checked(
            error="must not contain a user name or password (user:pass@); the vendor's "
            "credentials belong in consumerKey, consumerSecret, username and password"
        )
    if tail.startswith("?"):
        return Checked(error="must not have a query (?…); it is scheme://host[:port] only")
    if tail.startswith("#"):
        return Checked(error="must not have a fragment (#…); it is scheme://host[:port] only")
    if tail not in ("", "/"):
        return Checked(error=f"must not have a path; put the path in {path_field}")
    if authority.startswith("["):
        end = authority.find("]")
        host, port_text = authority[1:end], authority[end + 1 :]
        try:
            ipaddress.IPv6Address(host if end > 0 else "-")
        except ValueError:
            return Checked(error="has an invalid IPv6 address")
        shown_host = f"[{host.lower()}]"
    else:
        host, _, port_text = authority.partition(":")
        port_text = ":" + port_text if _ else ""
        if not _valid_host(host):
            return Checked(error="has an invalid host name" if host else "has no host name")
        shown_host = host.lower()
    port: int | None = None
    if port_text:
        digits = port_text[1:]
        valid = port_text.startswith(":") and digits.isascii() and digits.isdigit()
        if not valid or not 1 <= int(digits) <= 65535:
            return Checked(error="has an invalid port; it must be 1 to 65535")
        port = int(digits)
    warning = None
    if scheme == "http":
        if not allow_http:
            return Checked(
                error="http:// is refused; use https://, or set allowInsecureHttp: true "
                "(for a local test server only)"
            )
        if not is_loopback(host):
            warning = "uses http://: credentials cross the network unencrypted"
    shown_port = f":{port}" if port is not None and port != _DEFAULT_PORTS[scheme] else ""
    return Checked(value=f"{scheme}://{shown_host}{shown_port}", warning=warning, port=port)


def check_path(text: str, *, server_field: str) -> Checked:
    """A URL path stored with exactly one leading ``/``."""
    if _CLEAN_PATH.fullmatch(text):
        return Checked(value=text)
    if _SCHEME.match(text.strip()):
        return Checked(error=f"must be a path like /oauth/token; the server goes in {server_field}")
    if _SPACE.search(text):
        return Checked(error="must not contain spaces or line breaks")
    if "#" in text:
        return Checked(error="must not contain a fragment (#)")
    return Checked(value="/" + text.lstrip("/"))


def check_app_name(text: str) -> Checked:
    if not _APP_NAME.fullmatch(text):
        return Checked(
            error="must be letters, digits, '.', '_', '~' or '-' (it goes into the Token URL)"
        )
    return Checked(value=text)
