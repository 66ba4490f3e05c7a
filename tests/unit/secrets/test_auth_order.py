"""The ``auto`` order for credentials that need no login (no network involved)."""

from __future__ import annotations

from pathlib import Path

import pytest

from erelease.errors import SecretsError
from erelease.secrets.auth import authenticate
from erelease.secrets.client import build_client, client_config
from erelease.secrets.transport import Transport
from erelease.settings import VaultAuthSettings, VaultSettings


def _transport() -> Transport:
    config = client_config(VaultSettings(address="http://127.0.0.1:9"), {})
    return Transport(build_client(config), config)


def test_token_env_then_file(tmp_path: Path) -> None:
    (tmp_path / ".vault-token").write_text("file-token\n")
    transport = _transport()
    creds = authenticate(transport, VaultAuthSettings(), {"HOME": str(tmp_path)})
    assert (creds.source, creds.token.reveal(), creds.obtained) == (
        "~/.vault-token",
        "file-token",
        False,
    )
    assert transport.client.token == "file-token"
    env = {"HOME": str(tmp_path), "VAULT_TOKEN": "vault", "BAO_TOKEN": "bao"}
    creds = authenticate(transport, VaultAuthSettings(), env)
    assert (creds.source, creds.token.reveal()) == ("BAO_TOKEN", "bao")
    assert repr(creds.token) == "Secret('***')"
    transport.client.adapter.close()


def test_kubernetes_token_without_role_is_skipped_in_auto(tmp_path: Path) -> None:
    sa = tmp_path / "sa-token"
    sa.write_text("header.payload.signature")
    (tmp_path / ".vault-token").write_text("file-token")
    creds = authenticate(
        _transport(), VaultAuthSettings(), {"HOME": str(tmp_path)}, kubernetes_token_path=sa
    )
    assert creds.source == "~/.vault-token"


def test_method_is_case_insensitive_and_validated(tmp_path: Path) -> None:
    creds = authenticate(
        _transport(), VaultAuthSettings(method="Token"), {"VAULT_TOKEN": "t", "HOME": str(tmp_path)}
    )
    assert creds.source == "VAULT_TOKEN"
    with pytest.raises(SecretsError, match="expected one of auto, token, approle, jwt, kubernetes"):
        authenticate(_transport(), VaultAuthSettings(method="userpass"), {})


def test_unreadable_token_file(tmp_path: Path) -> None:
    (tmp_path / ".vault-token").mkdir()
    with pytest.raises(SecretsError, match="cannot read the Vault token file"):
        authenticate(_transport(), VaultAuthSettings(), {"HOME": str(tmp_path)})
