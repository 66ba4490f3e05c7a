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
    """The normal form of a value, or every reason it is wrong (and, for servers, its port)."""

    value: str | SecretRef | None = None
    errors: tuple[str, ...] = ()
    warning: str | None = None
    port: int | None = None


def _refused(*errors: str) -> Checked:
    return Checked(errors=errors)


def check_ref(text: str, *, require_key: bool = True) -> Checked:
    """A ``ref+vault://`` / ``ref+openbao://`` reference, parsed by :func:`parse_ref`."""
    simple = _SIMPLE_REF.fullmatch(text)
    if simple is not None:
        scheme, mount, path, key = simple.groups()
        if not path.startswith(("data/", "metadata/")) and (key is not None or not require_key):
            return Checked(value=SecretRef(mount=mount, path=path, key=key, scheme=scheme))
    if _SPACE.search(text):
        return _refused("invalid secret reference: it must not contain spaces or line breaks")
    try:
        return Checked(value=parse_ref(text, require_key=require_key))
    except ValueError as exc:
        return _refused(f"invalid secret reference: {exc}")


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

    Every problem of the value is reported, not only the first (SPEC §2.4):
    ``http://user:pw@host/path`` is refused for its userinfo, its path and its
    scheme at once. Normal form: lowercase scheme and host, no trailing slash,
    default port dropped (RFC 3986 §6.2.2.1 and §6.2.3).
    """
    clean = _CLEAN_HTTPS.fullmatch(text)
    if clean is not None and len(clean.group(1)) <= 253:
        host, digits = clean.groups()
        named = None if digits is None else int(digits)
        if named is None or named == 443:
            return Checked(value="https://" + host, port=named)
        if 1 <= named <= 65535:
            return Checked(value=f"https://{host}:{named}", port=named)
    errors: list[str] = []
    if _SPACE.search(text):
        errors.append("must not contain spaces or line breaks")
    match = _SCHEME.match(text.strip())
    if match is None:
        errors.append("must be scheme://host[:port], e.g. https://api.vendor.example")
        return _refused(*errors)
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme not in _DEFAULT_PORTS:
        errors.append(f'the scheme "{scheme}" is not supported; use https://')
    # RFC 3986 §3.2: the authority ends at the first "/", "?" or "#".
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    _userinfo, at, authority = authority.rpartition("@")
    if at:  # RFC 3986 §3.2.1; never echoed: it may hold a password
        errors.append(
            "must not contain a user name or password (user:pass@); the vendor's "
            "credentials belong in consumerKey, consumerSecret, username and password"
        )
    # RFC 3986 §3.3-3.5: path, then "?" query, then "#" fragment.
    path, hash_mark, _fragment = tail.partition("#")
    path, question_mark, _query = path.partition("?")
    if path not in ("", "/"):
        errors.append(f"must not have a path; put the path in {path_field}")
    if question_mark:
        errors.append("must not have a query (?…); it is scheme://host[:port] only")
    if hash_mark:
        errors.append("must not have a fragment (#…); it is scheme://host[:port] only")
    host, port_text, host_error = _split_authority(authority)
    if host_error is not None:
        errors.append(host_error)
    port: int | None = None
    if port_text:
        digits = port_text[1:]
        valid = port_text.startswith(":") and digits.isascii() and digits.isdigit()
        if valid and 1 <= int(digits) <= 65535:
            port = int(digits)
        else:
            errors.append("has an invalid port; it must be 1 to 65535")
    warning = None
    if scheme == "http":
        if not allow_http:
            errors.append(
                "http:// is refused; use https://, or set allowInsecureHttp: true "
                "(for a local test server only)"
            )
        elif not is_loopback(host):
            warning = "uses http://: credentials cross the network unencrypted"
    if errors:
        return _refused(*errors)
    shown_host = f"[{host.lower()}]" if ":" in host else host.lower()
    shown_port = f":{port}" if port is not None and port != _DEFAULT_PORTS[scheme] else ""
    return Checked(value=f"{scheme}://{shown_host}{shown_port}", warning=warning, port=port)


def _split_authority(authority: str) -> tuple[str, str, str | None]:
    """``host[:port]`` or ``[v6]:port`` → (host, ":port" or "", what is wrong with the host)."""
    if authority.startswith("["):  # RFC 3986 §3.2.2: an IPv6 literal in brackets
        end = authority.find("]")
        host, port_text = authority[1:end], authority[end + 1 :]
        try:
            ipaddress.IPv6Address(host if end > 0 else "-")
        except ValueError:
            return host, port_text if end > 0 else "", "has an invalid IPv6 address"
        return host, port_text, None
    host, colon, port_text = authority.partition(":")
    port_text = colon + port_text
    if not _valid_host(host):
        return host, port_text, "has an invalid host name" if host else "has no host name"
    return host, port_text, None


def check_path(text: str, *, server_field: str) -> Checked:
    """A URL path stored with exactly one leading ``/``; every problem of it reported."""
    if _CLEAN_PATH.fullmatch(text):
        return Checked(value=text)
    if _SCHEME.match(text.strip()):
        return _refused(f"must be a path like /oauth/token; the server goes in {server_field}")
    errors = []
    if _SPACE.search(text):
        errors.append("must not contain spaces or line breaks")
    if "#" in text:
        errors.append("must not contain a fragment (#)")
    if errors:
        return _refused(*errors)
    return Checked(value="/" + text.lstrip("/"))


def check_app_name(text: str) -> Checked:
    if not _APP_NAME.fullmatch(text):
        return _refused(
            "must be letters, digits, '.', '_', '~' or '-' (it goes into the Token URL)"
        )
    return Checked(value=text)
