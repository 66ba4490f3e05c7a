"""Every way Vault can fail reads as one sentence naming address, mount, path and key."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from erelease.errors import SecretsError
from erelease.model import Secret, SecretRef
from erelease.secrets import Vault
from erelease.settings import VaultSettings
from tests.fixtures.common import free_port
from tests.fixtures.openbao import OpenBaoServer

from .conftest import Answer, FakeHTTP, Seen, VaultFactory
from .fakevault import kv2_read, vault_like

REF = SecretRef("secret", "erelease/parchment", "password")


def _fail(vault: Vault, ref: SecretRef = REF) -> str:
    with pytest.raises(SecretsError) as info:
        vault.resolve([ref])
    assert info.value.exit_code == 1
    return str(info.value)


def _vault(address: str, token: str = "t", **settings: object) -> Vault:
    return Vault(
        VaultSettings(address=address, timeout=2, **settings), environ={"BAO_TOKEN": token}
    )  # type: ignore[arg-type]


def test_unreachable() -> None:
    address = f"http://127.0.0.1:{free_port()}"
    message = _fail(_vault(address))
    assert message.startswith(f"cannot connect to Vault at {address}: connection refused")


def test_unknown_host() -> None:
    message = _fail(_vault("https://vault.nonexistent.invalid:8200"))
    assert message.startswith("cannot resolve the host name of Vault at https://vault.nonexist")


def test_https_to_a_plain_http_port(openbao: OpenBaoServer) -> None:
    address = openbao.addr.replace("http://", "https://")
    assert "could not establish TLS with Vault at https://127.0.0.1" in _fail(_vault(address))


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_vault(ca: trustme.CA) -> Iterator[FakeHTTP]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with FakeHTTP(vault_like(lambda seen: kv2_read({"password": "tls-ok"})), tls=context) as fake:
        yield fake


def test_untrusted_certificate(tls_vault: FakeHTTP) -> None:
    message = _fail(_vault(tls_vault.url))
    assert message == (
        f"the TLS certificate of Vault at {tls_vault.url} is not trusted "
        "(set vault.caCert or BAO_CACERT/VAULT_CACERT to the CA that signed it)"
    )


def test_ca_file_from_settings_and_environment(
    tls_vault: FakeHTTP, ca: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with _vault(tls_vault.url, cacert=str(bundle)) as vault:
        assert vault.resolve([REF])[REF].reveal() == "tls-ok"
    env = {"BAO_TOKEN": "t", "VAULT_CACERT": str(bundle), "BAO_ADDR": tls_vault.url}
    with Vault(VaultSettings(timeout=2), environ=env) as vault:
        assert vault.resolve([REF])[REF].reveal() == "tls-ok"


def test_skip_verify_warns_loudly(tls_vault: FakeHTTP, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="erelease.secrets"),
        _vault(tls_vault.url, skip_verify=True) as vault,
    ):
        assert vault.resolve([REF])[REF].reveal() == "tls-ok"
    assert any("verification" in r.message and "DISABLED" in r.message for r in caplog.records)


def test_client_certificate(ca: trustme.CA, tmp_path: Path) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    client = ca.issue_cert("erelease-client@district-42.example")
    cert, key, bundle = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    client.cert_chain_pems[0].write_to_path(str(cert))
    client.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(bundle))
    with FakeHTTP(vault_like(lambda seen: kv2_read({"password": "mtls"})), tls=context) as fake:
        with _vault(fake.url, cacert=str(bundle)) as vault:
            assert "TLS" in _fail(vault)
        env = {"BAO_TOKEN": "t", "BAO_CLIENT_CERT": str(cert), "BAO_CLIENT_KEY": str(key)}
        with Vault(VaultSettings(address=fake.url, cacert=str(bundle)), environ=env) as vault:
            assert vault.resolve([REF])[REF].reveal() == "mtls"


def test_invalid_token(openbao: OpenBaoServer, openbao_kv: str) -> None:
    message = _fail(_vault(openbao.addr, token="s.not-a-token"), SecretRef(openbao_kv, "a", "k"))
    assert message == (
        f"the Vault token from BAO_TOKEN is invalid or expired for Vault at {openbao.addr} "
        "(log in again, or check the namespace)"
    )


def test_expired_token(openbao: OpenBaoServer, openbao_kv: str) -> None:
    openbao.kv_put(openbao_kv, "a", {"k": "v"})
    token = openbao.create_token(["default"], ttl="1s")
    time.sleep(1.5)
    assert "invalid or expired" in _fail(
        _vault(openbao.addr, token), SecretRef(openbao_kv, "a", "k")
    )


def test_policy_denies(openbao: OpenBaoServer, openbao_kv: str) -> None:
    openbao.kv_put(openbao_kv, "erelease/other", {"k": "v"})
    openbao.kv_put(openbao_kv, "erelease/denied", {"k": "v"})
    openbao.write_policy(
        f"only-other-{openbao_kv}",
        f'path "{openbao_kv}/data/erelease/other" {{ capabilities = ["read"] }}',
    )
    token = openbao.create_token([f"only-other-{openbao_kv}"])
    vault = _vault(openbao.addr, token)
    assert vault.resolve([SecretRef(openbao_kv, "erelease/other", "k")])
    message = _fail(vault, SecretRef(openbao_kv, "erelease/denied", "k"))
    assert message == (
        f"permission denied on Vault at {openbao.addr}: the policies of the token from "
        f"BAO_TOKEN do not grant 'read' on {openbao_kv}/data/erelease/denied "
        f"(needed to read secret {openbao_kv}/erelease/denied)"
    )
    # A plan needs no metadata where it may read the value: the read says the version.
    assert vault.versions([SecretRef(openbao_kv, "erelease/other", "k")]) == {
        SecretRef(openbao_kv, "erelease/other", "k"): 1
    }
    # Neither the value nor the metadata: the metadata is what versions could not read.
    with pytest.raises(SecretsError, match=r"do not grant 'read' on .*/metadata/erelease/denied"):
        vault.versions([SecretRef(openbao_kv, "erelease/denied", "k")])
    with pytest.raises(SecretsError, match=r"do not grant 'create' on .*/data/erelease/other"):
        vault.write_credentials(
            SecretRef(openbao_kv, "erelease/other"),
            data={"k": Secret("v")},
            cas=0,
            custom_metadata={},
        )
    nothing = openbao.create_token(["default"])
    assert "grant nothing under it" in _fail(
        _vault(openbao.addr, nothing), SecretRef(openbao_kv, "erelease/other", "k")
    )


def test_no_secrets_engine_at_mount(make_vault: VaultFactory, openbao: OpenBaoServer) -> None:
    message = _fail(make_vault(), SecretRef("nomount", "erelease/x", "k"))
    assert message.startswith(
        f"no secrets engine is mounted at nomount/ in Vault at {openbao.addr}"
    )
    assert "is a 'cubbyhole' secrets engine, not KV" in _fail(
        make_vault(), SecretRef("cubbyhole", "x", "k")
    )


def test_sealed(openbao_sealed: OpenBaoServer) -> None:
    start = time.monotonic()
    message = _fail(_vault(openbao_sealed.addr, openbao_sealed.root_token))
    assert message.startswith(f"Vault at {openbao_sealed.addr} is sealed; an operator must unseal")
    assert time.monotonic() - start < 2, "sealed is not retried"


def test_server_errors_are_retried(caplog: pytest.LogCaptureFixture) -> None:
    failures = iter([500, 502])

    def read(seen: Seen) -> Answer:
        status = next(failures, 200)
        return kv2_read({"password": "eventually"}) if status == 200 else Answer(status, {})

    with (
        FakeHTTP(vault_like(read)) as fake,
        _vault(fake.url) as vault,
        caplog.at_level(logging.DEBUG, logger="erelease.secrets"),
    ):
        assert vault.resolve([REF])[REF].reveal() == "eventually"
    assert next(r.message for r in caplog.records if "retrying" in r.message).startswith(
        "GET secret/data/erelease/parchment: HTTP 500 from Vault, retrying in"
    )


def test_persistent_server_error_and_standby() -> None:
    def read(seen: Seen) -> Answer:
        return Answer(503, {"errors": ["local node not active but active cluster node not found"]})

    standby = Answer(429, {"initialized": True, "sealed": False, "standby": True})
    with FakeHTTP(vault_like(read, health=standby)) as fake, _vault(fake.url) as vault:
        message = _fail(vault)
    assert message.startswith(f"Vault at {fake.url} is a standby node")
    reads = [s for s in fake.seen if "/data/" in s.path]
    assert len(reads) == 5  # bounded retries

    with FakeHTTP(vault_like(lambda seen: Answer(500, {}))) as fake, _vault(fake.url) as vault:
        assert _fail(vault) == (
            f"Vault at {fake.url} failed to read secret secret/erelease/parchment: server "
            "error (HTTP 500) after 5 attempts; try again, or ask the Vault operators"
        )


def test_rate_limited_then_served(openbao: OpenBaoServer, make_vault: VaultFactory) -> None:
    openbao.enable_kv("limited", 2)
    openbao.kv_put("limited", "app", {"k": "v"})
    client = openbao.client()
    client.adapter.post(
        "/v1/sys/quotas/rate-limit/erelease-test",
        json={"path": "limited/", "rate": 1, "interval": "1s"},
    )
    try:
        client.adapter.get("/v1/limited/data/app")  # spend the allowance
        ref = SecretRef("limited", "app", "k")
        assert make_vault().resolve([ref])[ref].reveal() == "v"
    finally:
        client.adapter.delete("/v1/sys/quotas/rate-limit/erelease-test")
        openbao.disable("limited")


def test_timeout() -> None:
    def slow(seen: Seen) -> Answer:
        time.sleep(1.0)
        return kv2_read({"password": "late"})

    with FakeHTTP(vault_like(slow)) as fake:
        vault = Vault(VaultSettings(address=fake.url, timeout=0.3), environ={"BAO_TOKEN": "t"})
        with vault:
            assert _fail(vault) == f"Vault at {fake.url} did not answer within 0.3s " + (
                "(raise vault.timeout, or check the network path to Vault)"
            )


def test_bad_address() -> None:
    with pytest.raises(SecretsError, match="is not a URL"):
        Vault(VaultSettings(address="vault.example.org:8200"), environ={})
