"""A throwaway config directory, and connection texts whose line numbers tests can rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

from erelease.config import ConfigResult, load_config

#: A valid outgoing connection. Line numbers: 1 apiVersion, 2 kind, 3 metadata,
#: 4 name, 5 spec, 6 authServer, 7 authPath, 8 uploadServer, 9 uploadPort,
#: 10 uploadPath, 11 consumerKey, 12 consumerSecret, 13 username, 14 password.
OUTGOING = """\
apiVersion: erelease/v1
kind: OutgoingConnection
metadata:
  name: parchment
spec:
  authServer: https://int-api.parchment.example
  authPath: /send-library-api/v1/oauth/token
  uploadServer: https://int-api.parchment.example
  uploadPort: 443
  uploadPath: /send-library-api/v1/pesc/highschool/transcript/1/3/0
  consumerKey: key-3235fffff69
  consumerSecret: ref+vault://secret/erelease/parchment#consumer_secret
  username: transcripts@district42.example.org
  password: ref+vault://secret/erelease/parchment#password
"""

#: A valid incoming connection. Lines: 4 name, 5 spec, 6 credentials.
INCOMING = """\
apiVersion: erelease/v1
kind: IncomingConnection
metadata:
  name: cfnc
spec:
  credentials: ref+vault://secret/erelease/incoming/cfnc
"""

#: Valid settings touching every section of erelease.yaml.
SETTINGS = """\
stack: district-42
state: sqlite:///.erelease/state.db
incoming:
  baseUrl: https://district.example.org/campus
  appName: intMN
vault:
  address: https://vault.example.org:8200
  namespace: district-42
  timeout: 5s
  auth: {method: approle, role: erelease, mount: approle}
tests:
  concurrency: 16
  timeout: 10
  retries: 2
  caBundle: /etc/ssl/district-ca.pem
serve:
  transcripts: transcripts/
  tokenTtl: 1h
"""


def set_field(text: str, key: str, value: str) -> str:
    """``text`` with the line of ``key`` (at any indent) now holding ``value``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(f"{key}:"):
            indent = line[: len(line) - len(line.lstrip())]
            lines[i] = f"{indent}{key}: {value}"
            return "\n".join(lines) + "\n"
    raise AssertionError(f"no line for {key}")


def drop_field(text: str, key: str) -> str:
    return "".join(line for line in text.splitlines(True) if not line.strip().startswith(f"{key}:"))


class ConfigDir:
    """A config directory under ``tmp_path``, which is also the working directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.root / "connections.d" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    def settings(self, content: str) -> Path:
        path = self.root / "erelease.yaml"
        path.write_text(content, encoding="utf-8")
        return path

    def load(self, **kwargs: object) -> ConfigResult:
        return load_config(self.root, **kwargs)  # type: ignore[arg-type]

    def lines(self, **kwargs: object) -> list[str]:
        return [d.format() for d in self.load(**kwargs).diagnostics]


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ConfigDir:
    monkeypatch.chdir(tmp_path)
    return ConfigDir(tmp_path)
