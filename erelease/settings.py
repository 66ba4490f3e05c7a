"""Settings values: what ``erelease.yaml``, ``ERELEASE_*`` and flags add up to.

Loading lives in :mod:`erelease.config.settings_file`; these frozen values are
what the secrets, state, checks and serve layers receive. Vault's own
``BAO_*``/``VAULT_*`` variables are layered below these by
:mod:`erelease.secrets.client`, which is why the Vault fields default to
``None`` rather than to a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from erelease.errors import UsageError

__all__ = [
    "DEFAULT_BASE_URL",
    "ServeSettings",
    "Settings",
    "TestSettings",
    "VaultAuthSettings",
    "VaultSettings",
    "parse_bool",
    "parse_duration",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8080/campus"
DEFAULT_STATE = "sqlite:///.erelease/state.db"

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
#: Go-style compound durations, as Terraform and Vault take them: 1h30m, 2m30s, 1m500ms.
_COMPOUND_RE = re.compile(r"^\s*(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+\s*$")
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


_TRUE = frozenset({"1", "t", "true", "y", "yes", "on"})
_FALSE = frozenset({"0", "f", "false", "n", "no", "off"})


def parse_bool(text: str) -> bool | None:
    """A boolean environment variable's value (``true``/``1``/``yes``/…); None if it is none."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def parse_duration(value: object, *, what: str = "duration") -> float:
    """``"10s"``, ``"250ms"``, ``"1.5m"``, ``"1h30m"`` or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise UsageError(f"{what}: expected a duration like 10s, 5m or 1h, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise UsageError(f"{what}: must not be negative")
        return float(value)
    match = _DURATION_RE.match(str(value))
    if match is not None:
        return float(match.group(1)) * _UNITS[match.group(2)]
    if _COMPOUND_RE.match(str(value)):
        return sum(float(n) * _UNITS[unit] for n, unit in _PART_RE.findall(str(value)))
    raise UsageError(f"{what}: expected a duration like 10s, 5m or 1h, got {value!r}")


@dataclass(frozen=True)
class VaultAuthSettings:
    method: str = "auto"  # auto | token | approle | jwt | kubernetes
    role: str | None = None
    mount: str | None = None
    #: JWT: name of an environment variable holding a CI id token (GitLab id_tokens)
    token_env: str | None = None
    #: JWT: audience to request from GitHub Actions' OIDC endpoint
    audience: str | None = None


@dataclass(frozen=True)
class VaultSettings:
    address: str | None = None
    namespace: str | None = None
    cacert: str | None = None
    capath: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    skip_verify: bool | None = None
    timeout: float = 10.0
    auth: VaultAuthSettings = field(default_factory=VaultAuthSettings)


@dataclass(frozen=True)
class TestSettings:
    concurrency: int = 32
    timeout: float = 10.0
    retries: int = 2
    ca_bundle: str | None = None


@dataclass(frozen=True)
class ServeSettings:
    transcripts: Path = Path("transcripts")
    token_ttl: float = 3600.0


@dataclass(frozen=True)
class Settings:
    config_dir: Path
    stack: str
    state: str = DEFAULT_STATE
    base_url: str = DEFAULT_BASE_URL
    app_name: str | None = None
    vault: VaultSettings = field(default_factory=VaultSettings)
    tests: TestSettings = field(default_factory=TestSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)

    @property
    def base_path(self) -> str:
        """The path of ``incoming.baseUrl`` (``/campus`` by default), no trailing slash."""
        return urlsplit(self.base_url).path.rstrip("/")

    def state_url(self) -> str:
        """The state URL with a relative SQLite path resolved against the config dir."""
        url = self.state
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            rel = url[len("sqlite:///") :]
            return "sqlite:///" + str((self.config_dir / rel).resolve())
        return url
