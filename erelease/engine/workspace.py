"""A workspace: one config directory with its settings, registry and Vault.

Commands open one, use what they need and close it. The registry and Vault are
opened lazily, so ``validate`` touches neither and a plan without references
never contacts Vault.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from erelease.config import ConfigResult, load_config
from erelease.errors import ConfigError, SecretsError, UsageError
from erelease.model import KINDS, ConnectionRecord
from erelease.secrets import Vault
from erelease.secrets.client import client_config
from erelease.settings import Settings
from erelease.state import StateStore, mask_url, open_store
from erelease.state.urls import sqlite_path

__all__ = ["APPLIED", "Workspace", "actor_name", "git_commit", "resolve_names"]

#: Where ``show NAME`` and ``test NAME`` look: the registry, not connections.d/.
APPLIED = "applied in this stack (run 'erelease apply' first to apply the configuration)"


class Workspace:
    """Settings plus lazily opened config, registry and Vault session."""

    def __init__(self, settings: Settings, *, environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.environ = os.environ if environ is None else environ
        self._store: StateStore | None = None
        self._vault: Vault | None = None

    @property
    def stack(self) -> str:
        return self.settings.stack

    @cached_property
    def config(self) -> ConfigResult:
        """The validated config; ConfigError (with every diagnostic) if it has errors."""
        result = load_config(self.settings.config_dir, settings=self.settings)
        if not result.ok:
            errors = [d for d in result.diagnostics if d.severity == "error"]
            raise ConfigError(
                f"the configuration has {len(errors)} error(s); run 'erelease validate'",
                diagnostics=result.diagnostics,
            )
        return result

    def describe(self) -> str:
        """One line for ``-v``: the stack, config, registry and Vault this run uses.

        The Vault address is the one the session would use (settings over
        ``BAO_ADDR`` over ``VAULT_ADDR``), worked out without contacting Vault;
        the state URL is shown with any password masked.
        """
        try:
            vault = client_config(self.settings.vault, self.environ).address
        except SecretsError:
            vault = "(the Vault settings are invalid)"
        return (
            f"stack {self.stack}: config directory {self.settings.config_dir}, "
            f"state store {mask_url(self.settings.state_url())}, Vault {vault}"
        )

    @property
    def store(self) -> StateStore:
        if self._store is None:
            self._store = open_store(self.settings.state_url())
        return self._store

    def has_registry(self) -> bool:
        """False while the SQLite registry file does not exist yet.

        Commands that only read (plan, show, state list/history, test) then see an
        empty registry instead of creating a file — a mistyped ``--state`` path
        must not leave a new registry (and its directories) behind.
        """
        if self._store is not None:
            return True
        url = self.settings.state_url()
        if url.startswith("sqlite:"):
            return sqlite_path(url).exists()
        return True

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            self._vault = Vault(self.settings.vault, environ=self.environ)
        return self._vault

    def close(self) -> None:
        if self._vault is not None:
            self._vault.close()
            self._vault = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def resolve_names(
    names: Sequence[str], known: Sequence[str], *, among: str = "in the config or the registry"
) -> list[str]:
    """Turn NAMEs into addresses: ``name`` if unique across kinds, else ``kind/name``.

    ``among`` says where ``known`` came from, for the message about a NAME not in it.
    """
    addresses: list[str] = []
    known_set = set(known)
    for name in names:
        if "/" in name:
            kind = name.split("/", 1)[0]
            if kind not in KINDS:
                raise UsageError(f"{name!r}: the kind must be 'outgoing' or 'incoming'")
            if name not in known_set:
                raise UsageError(f"no connection {name!r} {among}")
            addresses.append(name)
            continue
        matches = [a for a in sorted(known_set) if a.split("/", 1)[1] == name]
        if not matches:
            raise UsageError(f"no connection named {name!r} {among}")
        if len(matches) > 1:
            raise UsageError(
                f"{name!r} is both {' and '.join(matches)}; say which, e.g. {matches[0]!r}"
            )
        addresses.append(matches[0])
    return addresses


def known_addresses(ws: Workspace, records: Sequence[ConnectionRecord]) -> list[str]:
    return sorted({c.address for c in ws.config.connections} | {r.address for r in records})


def actor_name(environ: Mapping[str, str]) -> str:
    """Who applies: ERELEASE_ACTOR, the CI's user, or the local user @ host."""
    for var in ("ERELEASE_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN"):
        if environ.get(var):
            return environ[var]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def git_commit(config_dir: Path) -> str | None:
    """The commit checked out in the config directory, if it is a Git work tree."""
    try:
        out = subprocess.run(
            ["git", "-C", str(config_dir), "rev-parse", "--verify", "-q", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) >= 40 else None
