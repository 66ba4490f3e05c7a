"""Build the hvac client with every connection setting spelled out.

hvac on its own reads only some of the Vault environment (``VAULT_ADDR``,
``VAULT_TOKEN``, ``~/.vault-token``, and the TLS variables *at import time*)
and none of OpenBao's ``BAO_*``. A district's CI runner may set either family,
so this module resolves every setting itself, in the order of SPEC §4:

    VaultSettings (flags > ERELEASE_* > erelease.yaml) > BAO_* > VAULT_* > default

and hands hvac explicit values, so nothing is picked up behind our back.
Trust settings travel as a unit: if ``erelease.yaml`` names a CA file or
directory, a ``BAO_CACERT`` in the environment does not override half of it;
the same holds for the client certificate and key.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import hvac
import requests
import urllib3
from hvac.adapters import JSONAdapter
from requests.adapters import HTTPAdapter

from erelease.errors import SecretsError
from erelease.settings import VaultSettings, parse_bool

__all__ = ["DEFAULT_ADDRESS", "ClientConfig", "build_client", "client_config", "env_value"]

log = logging.getLogger("erelease.secrets")

DEFAULT_ADDRESS = "https://127.0.0.1:8200"


def env_value(environ: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """``(variable, value)`` of ``BAO_<name>``, else ``VAULT_<name>``; empty counts as unset."""
    for prefix in ("BAO_", "VAULT_"):
        variable = prefix + name
        value = environ.get(variable, "").strip()
        if value:
            return variable, value
    return None


def _env(environ: Mapping[str, str], name: str) -> str | None:
    found = env_value(environ, name)
    return found[1] if found else None


@dataclass(frozen=True)
class ClientConfig:
    """Where Vault is and how to talk to it; no credentials here."""

    address: str
    namespace: str | None
    cacert: str | None
    capath: str | None
    client_cert: str | None
    client_key: str | None
    skip_verify: bool
    timeout: float

    @property
    def verify(self) -> bool | str:
        """What requests wants: ``False``, a CA file or directory, or ``True`` (system CAs)."""
        if self.skip_verify:
            return False
        # Vault's documented rule: CACERT takes precedence over CAPATH.
        return self.cacert or self.capath or True

    @property
    def cert(self) -> tuple[str, str] | str | None:
        if self.client_cert and self.client_key:
            return (self.client_cert, self.client_key)
        return self.client_cert

    def describe(self) -> str:
        """``Vault at <address>`` (with the namespace), as error messages name it."""
        where = f"Vault at {self.address}"
        if self.namespace:
            where += f" (namespace {self.namespace})"
        return where


def _parse_bool(variable: str, value: str) -> bool:
    parsed = parse_bool(value)
    if parsed is None:
        raise SecretsError(f"{variable}: expected true or false, got {value!r}")
    return parsed


def _check_address(address: str) -> str:
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SecretsError(
            f"Vault address {address!r} is not a URL like https://vault.example.org:8200 "
            "(set vault.address, ERELEASE_VAULT_ADDRESS, BAO_ADDR or VAULT_ADDR)"
        )
    if parts.username or parts.password:
        raise SecretsError("the Vault address must not contain a user name or password")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise SecretsError(f"Vault address {address!r} has an invalid port") from None
    return address.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_config(settings: VaultSettings, environ: Mapping[str, str]) -> ClientConfig:
    """Merge settings over ``BAO_*`` over ``VAULT_*`` over defaults (SPEC §4)."""
    address = _check_address(settings.address or _env(environ, "ADDR") or DEFAULT_ADDRESS)
    namespace = settings.namespace or _env(environ, "NAMESPACE")
    namespace = (namespace.strip("/") or None) if namespace else None

    if settings.cacert or settings.capath:
        cacert, capath = settings.cacert, settings.capath
    else:
        cacert, capath = _env(environ, "CACERT"), _env(environ, "CAPATH")
    if settings.client_cert or settings.client_key:
        client_cert, client_key = settings.client_cert, settings.client_key
    else:
        client_cert, client_key = _env(environ, "CLIENT_CERT"), _env(environ, "CLIENT_KEY")
    if client_key and not client_cert:
        raise SecretsError("a Vault client key is set but no client certificate (CLIENT_CERT)")

    if settings.skip_verify is not None:
        skip_verify = settings.skip_verify
    else:
        found = env_value(environ, "SKIP_VERIFY")
        skip_verify = _parse_bool(*found) if found else False

    if settings.timeout <= 0:
        raise SecretsError("vault.timeout must be a positive duration")
    return ClientConfig(
        address=address,
        namespace=namespace,
        cacert=cacert,
        capath=capath,
        client_cert=client_cert,
        client_key=client_key,
        skip_verify=skip_verify,
        timeout=settings.timeout,
    )


def _warn_insecure(config: ClientConfig) -> None:
    parts = urlsplit(config.address)
    if config.skip_verify and parts.scheme == "https":
        log.warning(
            "TLS certificate verification for %s is DISABLED (skip_verify): anyone on the "
            "network path can impersonate Vault and read every secret erelease fetches. "
            "Set vault.caCert or BAO_CACERT instead.",
            config.address,
        )
        # We said it loudly once; urllib3 would repeat it on every request.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
        log.warning(
            "Vault address %s uses plain http: tokens and secrets cross the network unencrypted",
            config.address,
        )


def build_client(config: ClientConfig, *, pool_size: int = 16) -> hvac.Client:
    """An hvac client for ``config`` with no token yet (auth sets it).

    The requests session gets a connection pool as large as the resolver's
    thread pool, so concurrent reads reuse connections instead of discarding them.
    """
    _warn_insecure(config)
    session = requests.Session()
    pool = HTTPAdapter(pool_connections=2, pool_maxsize=max(pool_size, 1), max_retries=0)
    session.mount("https://", pool)
    session.mount("http://", pool)
    session.verify = config.verify
    session.cert = config.cert
    adapter = JSONAdapter(
        base_uri=config.address,
        token=None,
        cert=config.cert,
        verify=config.verify,
        timeout=config.timeout,
        proxies=None,
        allow_redirects=True,
        session=session,
        namespace=config.namespace,
    )
    # token="" keeps hvac from reading VAULT_TOKEN or ~/.vault-token by itself; the
    # adapter set below replaces whatever TLS defaults hvac took from its import-time env.
    client = hvac.Client(
        url=config.address,
        token="",
        cert=config.cert,
        verify=config.verify,
        timeout=config.timeout,
        session=session,
        namespace=config.namespace,
    )
    client.adapter = adapter
    return client
