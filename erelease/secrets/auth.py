"""Find the Vault credentials of wherever erelease runs, and log in with them.

A laptop has ``BAO_TOKEN``/``VAULT_TOKEN`` or ``~/.vault-token``; a CI runner
has an AppRole or an OIDC id token (GitHub Actions, GitLab ``id_tokens``); a
Kubernetes job has its service-account token. ``auto`` tries them in the order
of SPEC §4 and takes the first that is *present* (a present but rejected
credential is an error, not a reason to try the next one: silently falling
back would hide a broken pipeline). An explicit ``vault.auth.method`` uses that
method only.

A token the user gave is never revoked; a token obtained here by logging in
is marked ``obtained`` so the session revokes it when it closes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx

from erelease.errors import SecretsError
from erelease.model import Secret
from erelease.secrets.client import env_value
from erelease.secrets.transport import Target, Transport
from erelease.settings import VaultAuthSettings

__all__ = ["KUBERNETES_TOKEN_PATH", "METHODS", "Credentials", "authenticate", "revoke"]

log = logging.getLogger("erelease.secrets")

KUBERNETES_TOKEN_PATH = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
METHODS = ("auto", "token", "approle", "jwt", "kubernetes")
_DEFAULT_MOUNTS = {"approle": "approle", "jwt": "jwt", "kubernetes": "kubernetes"}
_LABELS = {"approle": "AppRole", "jwt": "JWT", "kubernetes": "Kubernetes"}


@dataclass(frozen=True)
class Credentials:
    """A usable Vault token and where it came from."""

    token: Secret
    source: str  # "BAO_TOKEN", "~/.vault-token", "AppRole login (auth/approle)", ...
    obtained: bool  # True when erelease logged in for it, so it must revoke it


@dataclass(frozen=True)
class _Context:
    transport: Transport
    settings: VaultAuthSettings
    environ: Mapping[str, str]
    kubernetes_token_path: Path
    home: Path


def _token_env(ctx: _Context) -> Credentials | None:
    found = env_value(ctx.environ, "TOKEN")
    if found is None:
        return None
    return Credentials(Secret(found[1]), found[0], obtained=False)


def _token_file(ctx: _Context) -> Credentials | None:
    path = ctx.home / ".vault-token"
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        raise SecretsError(f"cannot read the Vault token file {path}") from None
    return Credentials(Secret(token), "~/.vault-token", obtained=False) if token else None


def _login(ctx: _Context, method: str, payload: dict[str, str], hint: str) -> Credentials:
    mount = (ctx.settings.mount or _DEFAULT_MOUNTS[method]).strip("/")
    label = f"{_LABELS[method]} login (auth/{mount})"
    target = Target("log in with", f"{_LABELS[method]} at auth/{mount}", "update")
    reply = ctx.transport.request(
        "post",
        f"auth/{quote(mount)}/login",
        target=target,
        json=payload,
        accept=(400, 401, 403, 404),
    )
    if reply.status >= 400:
        raise SecretsError(
            f"{label} to {ctx.transport.where} was rejected (HTTP {reply.status}): {hint}, "
            f"and that the {_LABELS[method]} auth method is enabled at auth/{mount}"
        )
    auth = reply.body.get("auth")
    token = auth.get("client_token") if isinstance(auth, Mapping) else None
    if not isinstance(token, str) or not token:
        raise SecretsError(f"{label} to {ctx.transport.where} returned no token")
    log.debug("logged in to %s with %s", ctx.transport.where, label)
    return Credentials(Secret(token), label, obtained=True)


def _approle_ids(ctx: _Context) -> tuple[str, str | None] | None:
    role_id = env_value(ctx.environ, "ROLE_ID")
    if role_id is None:
        return None
    secret_id = env_value(ctx.environ, "SECRET_ID")
    return role_id[1], secret_id[1] if secret_id else None


def _approle(ctx: _Context, ids: tuple[str, str | None]) -> Credentials:
    payload = {"role_id": ids[0]}
    if ids[1] is not None:
        payload["secret_id"] = ids[1]
    return _login(ctx, "approle", payload, "check VAULT_ROLE_ID and VAULT_SECRET_ID")


def _github_id_token(ctx: _Context, url: str, bearer: str) -> str:
    audience = ctx.settings.audience
    if audience:
        url += ("&" if "?" in url else "?") + urlencode({"audience": audience})
    failure = "could not get an OIDC id token from GitHub Actions"
    try:
        response = httpx.get(
            url,
            headers={"Authorization": f"bearer {bearer}", "Accept": "application/json"},
            timeout=ctx.transport.config.timeout,
        )
    except httpx.HTTPError as exc:
        raise SecretsError(f"{failure} ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise SecretsError(
            f"{failure} (HTTP {response.status_code}); does the workflow grant "
            "`permissions: id-token: write`?"
        )
    try:
        value = response.json().get("value")
    except (ValueError, AttributeError):
        value = None
    if not isinstance(value, str) or not value:
        raise SecretsError(f"{failure}: the answer held no token")
    return value


def _ci_id_token(ctx: _Context) -> tuple[str, str] | None:
    """``(id token, where it came from)`` for JWT login, or None if this is no CI job."""
    name = ctx.settings.token_env
    if name:
        value = ctx.environ.get(name, "").strip()
        if value:
            return value, name
    url = ctx.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL", "").strip()
    bearer = ctx.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "").strip()
    if url and bearer:
        return _github_id_token(ctx, url, bearer), "GitHub Actions OIDC"
    return None


def _jwt(ctx: _Context, found: tuple[str, str]) -> Credentials:
    payload = {"jwt": found[0]}
    if ctx.settings.role:
        payload["role"] = ctx.settings.role
    hint = f"check vault.auth.role and that the role accepts the id token from {found[1]}"
    return _login(ctx, "jwt", payload, hint)


def _kubernetes_token(ctx: _Context) -> str | None:
    try:
        return ctx.kubernetes_token_path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        raise SecretsError(
            f"cannot read the Kubernetes service-account token {ctx.kubernetes_token_path}"
        ) from None


def _kubernetes(ctx: _Context, jwt: str) -> Credentials:
    if not ctx.settings.role:
        raise SecretsError("Kubernetes login needs a Vault role: set vault.auth.role")
    payload = {"role": ctx.settings.role, "jwt": jwt}
    hint = "check vault.auth.role and the role's bound service accounts and namespaces"
    return _login(ctx, "kubernetes", payload, hint)


def _explicit(ctx: _Context, method: str) -> Credentials:
    if method == "token":
        found = _token_env(ctx) or _token_file(ctx)
        if found is None:
            raise SecretsError(
                "vault.auth.method is token but no token was found "
                "(set BAO_TOKEN or VAULT_TOKEN, or run `bao login`)"
            )
        return found
    if method == "approle":
        ids = _approle_ids(ctx)
        if ids is None:
            raise SecretsError(
                "vault.auth.method is approle but VAULT_ROLE_ID (or BAO_ROLE_ID) is not set"
            )
        return _approle(ctx, ids)
    if method == "jwt":
        token = _ci_id_token(ctx)
        if token is None:
            where = f"${ctx.settings.token_env} nor " if ctx.settings.token_env else ""
            raise SecretsError(
                f"vault.auth.method is jwt but neither {where}a GitHub Actions OIDC token "
                "(ACTIONS_ID_TOKEN_REQUEST_URL) is available"
            )
        return _jwt(ctx, token)
    jwt = _kubernetes_token(ctx)
    if jwt is None:
        raise SecretsError(
            "vault.auth.method is kubernetes but there is no service-account token at "
            f"{ctx.kubernetes_token_path}"
        )
    return _kubernetes(ctx, jwt)


def _auto(ctx: _Context) -> Credentials:
    found = _token_env(ctx)
    if found is not None:
        return found
    ids = _approle_ids(ctx)
    if ids is not None:
        return _approle(ctx, ids)
    token = _ci_id_token(ctx)
    if token is not None:
        return _jwt(ctx, token)
    if ctx.settings.role:
        jwt = _kubernetes_token(ctx)
        if jwt is not None:
            return _kubernetes(ctx, jwt)
    found = _token_file(ctx)
    if found is not None:
        return found
    raise SecretsError(
        f"no Vault credentials found for {ctx.transport.where}: set BAO_TOKEN or VAULT_TOKEN, "
        "VAULT_ROLE_ID and VAULT_SECRET_ID, a CI id token (vault.auth.tokenEnv), "
        "or run `bao login`"
    )


def authenticate(
    transport: Transport,
    settings: VaultAuthSettings,
    environ: Mapping[str, str],
    *,
    kubernetes_token_path: Path = KUBERNETES_TOKEN_PATH,
    home: Path | None = None,
) -> Credentials:
    """Find credentials per ``settings.method`` and log in if needed; sets the token."""
    method = (settings.method or "auto").strip().lower()
    if method not in METHODS:
        raise SecretsError(
            f"vault.auth.method: unknown method {settings.method!r} "
            f"(expected one of {', '.join(METHODS)})"
        )
    if home is None:
        home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    ctx = _Context(transport, settings, environ, kubernetes_token_path, home)
    credentials = _auto(ctx) if method == "auto" else _explicit(ctx, method)
    transport.set_token(credentials.token.reveal(), credentials.source)
    return credentials


def revoke(transport: Transport, credentials: Credentials) -> None:
    """Revoke a token erelease obtained by logging in; never one the user gave.

    A failure is logged, not raised: the token still expires with its TTL.
    """
    if not credentials.obtained:
        return
    try:
        transport.request(
            "post",
            "auth/token/revoke-self",
            target=Target("revoke", f"the token from {credentials.source}", "update"),
            retry=False,
        )
    except SecretsError as exc:
        log.warning("could not revoke the Vault token erelease logged in for: %s", exc)
    else:
        log.debug("revoked the token from %s", credentials.source)
