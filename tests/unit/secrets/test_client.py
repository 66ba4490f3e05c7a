"""Client settings: flags/ERELEASE_*/yaml (VaultSettings) > BAO_* > VAULT_* > defaults."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from erelease.config.settings_file import load_settings
from erelease.errors import ConfigError, SecretsError
from erelease.secrets.client import DEFAULT_ADDRESS, build_client, client_config
from erelease.settings import VaultSettings

FIELDS = {
    "ADDR": ("address", "https://{}.example:8200"),
    "NAMESPACE": ("namespace", "{}-ns"),
    "CACERT": ("cacert", "/etc/{}/ca.pem"),
    "CAPATH": ("capath", "/etc/{}/certs"),
    "CLIENT_CERT": ("client_cert", "/etc/{}/client.pem"),
    "CLIENT_KEY": ("client_key", "/etc/{}/client.key"),
}


def test_defaults() -> None:
    config = client_config(VaultSettings(), {})
    assert config.address == DEFAULT_ADDRESS == "https://127.0.0.1:8200"
    assert config.namespace is None and config.skip_verify is False
    assert config.verify is True and config.cert is None
    assert config.timeout == 10.0


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_precedence_per_variable(name: str) -> None:
    attribute, pattern = FIELDS[name]
    both = {f"BAO_{name}": pattern.format("bao"), f"VAULT_{name}": pattern.format("vault")}
    # client key alone is refused, so pair it with a certificate where needed
    extra = {"VAULT_CLIENT_CERT": "/c.pem"} if name == "CLIENT_KEY" else {}
    assert getattr(client_config(VaultSettings(), both | extra), attribute) == pattern.format("bao")
    only_vault = {f"VAULT_{name}": pattern.format("vault"), f"BAO_{name}": ""}
    assert getattr(client_config(VaultSettings(), only_vault | extra), attribute) == (
        pattern.format("vault")
    )
    settings = replace(VaultSettings(), **{attribute: pattern.format("settings")})
    if name == "CLIENT_KEY":
        settings = replace(settings, client_cert="/s.pem")
    assert getattr(client_config(settings, both | extra), attribute) == pattern.format("settings")


def test_skip_verify_precedence() -> None:
    assert client_config(VaultSettings(), {"VAULT_SKIP_VERIFY": "true"}).skip_verify
    env = {"BAO_SKIP_VERIFY": "0", "VAULT_SKIP_VERIFY": "1"}
    assert not client_config(VaultSettings(), env).skip_verify
    assert not client_config(VaultSettings(skip_verify=False), {"BAO_SKIP_VERIFY": "1"}).skip_verify
    assert client_config(VaultSettings(skip_verify=True), {}).verify is False
    with pytest.raises(SecretsError, match="BAO_SKIP_VERIFY: expected true or false"):
        client_config(VaultSettings(), {"BAO_SKIP_VERIFY": "maybe"})


def test_trust_settings_travel_as_a_unit() -> None:
    env = {"BAO_CACERT": "/env/ca.pem", "VAULT_CLIENT_CERT": "/env/c.pem"}
    config = client_config(VaultSettings(capath="/etc/ssl/certs", client_cert="/s/c.pem"), env)
    assert (config.cacert, config.capath) == (None, "/etc/ssl/certs")
    assert config.verify == "/etc/ssl/certs"
    assert config.cert == "/s/c.pem"
    both = client_config(VaultSettings(cacert="/a.pem", capath="/dir"), {})
    assert both.verify == "/a.pem"  # CACERT takes precedence over CAPATH


def test_client_cert_pair() -> None:
    env = {"VAULT_CLIENT_CERT": "/c.pem", "VAULT_CLIENT_KEY": "/k.pem"}
    assert client_config(VaultSettings(), env).cert == ("/c.pem", "/k.pem")
    with pytest.raises(SecretsError, match="client key is set but no client certificate"):
        client_config(VaultSettings(), {"VAULT_CLIENT_KEY": "/k.pem"})


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("vault.example.org:8200", "is not a URL"),
        ("ftp://vault.example.org", "is not a URL"),
        ("https://user:pw@vault.example.org", "must not contain a user name"),
        ("https://vault.example.org:99999", "invalid port"),
    ],
)
def test_bad_addresses(address: str, message: str) -> None:
    with pytest.raises(SecretsError, match=message):
        client_config(VaultSettings(address=address), {})


def test_namespace_is_normalised_and_address_trailing_slash_dropped() -> None:
    config = client_config(VaultSettings(address="https://v.example/", namespace="/a/b/"), {})
    assert config.namespace == "a/b" and config.address == "https://v.example"
    assert config.describe() == "Vault at https://v.example (namespace a/b)"


def test_build_client_ignores_hvac_environment_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "from-process-env")
    (tmp_path / ".vault-token").write_text("from-file")
    monkeypatch.setenv("HOME", str(tmp_path))
    config = client_config(
        VaultSettings(address="http://127.0.0.1:8200", namespace="ns", timeout=3.5),
        {"VAULT_CLIENT_CERT": "/c.pem", "VAULT_CLIENT_KEY": "/k.pem", "BAO_CACERT": "/ca.pem"},
    )
    client = build_client(config, pool_size=4)
    adapter = client.adapter
    assert not adapter.token  # no token until auth sets one
    assert adapter.base_uri == "http://127.0.0.1:8200" and adapter.namespace == "ns"
    assert adapter._kwargs["verify"] == "/ca.pem"
    assert adapter._kwargs["cert"] == ("/c.pem", "/k.pem")
    assert adapter._kwargs["timeout"] == 3.5
    adapter.close()


def test_insecure_settings_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="erelease.secrets"):
        build_client(client_config(VaultSettings(skip_verify=True), {})).adapter.close()
        build_client(
            client_config(VaultSettings(address="http://vault.example.org:8200"), {})
        ).adapter.close()
        build_client(
            client_config(VaultSettings(address="http://127.0.0.1:8200"), {})
        ).adapter.close()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "TLS certificate verification" in messages[0] and "DISABLED" in messages[0]
    assert "plain http" in messages[1]


def test_timeout_must_be_positive() -> None:
    with pytest.raises(SecretsError, match="positive"):
        client_config(VaultSettings(timeout=0), {})


#: erelease.yaml key and ERELEASE_* variable of each Vault setting that BAO_*/VAULT_* also set
LAYERED = {
    "ADDR": ("address", "ERELEASE_VAULT_ADDRESS"),
    "NAMESPACE": ("namespace", "ERELEASE_VAULT_NAMESPACE"),
    "CACERT": ("caCert", "ERELEASE_VAULT_CA_CERT"),
    "CAPATH": ("caPath", "ERELEASE_VAULT_CA_PATH"),
    "CLIENT_CERT": ("clientCert", "ERELEASE_VAULT_CLIENT_CERT"),
    "CLIENT_KEY": ("clientKey", "ERELEASE_VAULT_CLIENT_KEY"),
}


@pytest.mark.parametrize("name", sorted(LAYERED))
def test_every_layer_in_order(name: str, tmp_path: Path) -> None:
    """ERELEASE_* > erelease.yaml > BAO_* > VAULT_* > default, from the file to the client."""
    key, variable = LAYERED[name]
    attribute = FIELDS[name][0]
    value = {
        "ADDR": "https://{}.example:8200",
        "NAMESPACE": "{}-ns",
    }.get(name, "/etc/{}/file.pem")
    pair = {"CLIENT_KEY": ("clientCert", "CLIENT_CERT")}.get(name)

    def config(env: dict[str, str], in_file: bool) -> object:
        lines = ["vault:"]
        if in_file:
            lines.append(f"  {key}: {value.format('yaml')}")
            if pair:
                lines.append(f"  {pair[0]}: /yaml/c.pem")
        (tmp_path / "erelease.yaml").write_text("\n".join(lines) + "\n" if in_file else "")
        if pair:
            env = {f"BAO_{pair[1]}": "/bao/c.pem", **env}
            if variable in env:
                env["ERELEASE_VAULT_CLIENT_CERT"] = "/erelease/c.pem"
        settings = load_settings(tmp_path, environ=env)
        return getattr(client_config(settings.vault, env), attribute)

    env = {
        variable: value.format("erelease"),
        f"BAO_{name}": value.format("bao"),
        f"VAULT_{name}": value.format("vault"),
    }
    assert config(env, True) == value.format("erelease")
    del env[variable]
    assert config(env, True) == value.format("yaml")
    assert config(env, False) == value.format("bao")
    del env[f"BAO_{name}"]
    assert config(env, False) == value.format("vault")


def test_skip_verify_and_timeout_from_erelease_variables(tmp_path: Path) -> None:
    (tmp_path / "erelease.yaml").write_text("vault:\n  skipVerify: false\n  timeout: 3s\n")
    env = {"ERELEASE_VAULT_SKIP_VERIFY": "yes", "BAO_SKIP_VERIFY": "false"}
    settings = load_settings(tmp_path, environ={**env, "ERELEASE_VAULT_TIMEOUT": "250ms"})
    assert client_config(settings.vault, env).skip_verify is True
    assert settings.vault.timeout == 0.25
    settings = load_settings(tmp_path, environ={"BAO_SKIP_VERIFY": "true"})
    assert client_config(settings.vault, {"BAO_SKIP_VERIFY": "true"}).skip_verify is False
    assert settings.vault.timeout == 3.0
    (tmp_path / "erelease.yaml").write_text("")
    settings = load_settings(tmp_path, environ={})
    assert client_config(settings.vault, {"BAO_SKIP_VERIFY": "1"}).skip_verify
    with pytest.raises(ConfigError, match="ERELEASE_VAULT_SKIP_VERIFY: must be true or false"):
        load_settings(tmp_path, environ={"ERELEASE_VAULT_SKIP_VERIFY": "maybe"})
