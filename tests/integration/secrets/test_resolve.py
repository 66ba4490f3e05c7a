"""Resolving references against a real OpenBao: KV v2 and v1, versions, one read per path."""

from __future__ import annotations

import pytest

from erelease.errors import SecretsError
from erelease.model import Secret, SecretRef, parse_ref
from erelease.secrets import Vault
from erelease.settings import VaultSettings
from tests.fixtures.openbao import OpenBaoServer

from .conftest import VaultFactory


def test_resolves_every_key_from_one_read(
    openbao: OpenBaoServer, openbao_kv: str, make_vault: VaultFactory
) -> None:
    openbao.kv_put(openbao_kv, "erelease/parchment", {"consumer_secret": "cs", "password": "pw"})
    refs = [
        parse_ref(f"ref+vault://{openbao_kv}/erelease/parchment#consumer_secret"),
        parse_ref(f"ref+openbao://{openbao_kv}/erelease/parchment#password"),
    ]
    vault = make_vault()
    values = vault.resolve(refs)
    assert {str(r): v.reveal() for r, v in values.items()} == {
        f"{openbao_kv}/erelease/parchment#consumer_secret": "cs",
        f"{openbao_kv}/erelease/parchment#password": "pw",
    }
    assert all(isinstance(v, Secret) for v in values.values())
    assert vault.reads == 1
    vault.resolve(refs)  # served from the session's read
    assert vault.reads == 1


def test_distinct_paths_each_read_once(
    openbao: OpenBaoServer, openbao_kv: str, make_vault: VaultFactory
) -> None:
    for i in range(20):
        openbao.kv_put(openbao_kv, f"p{i}", {f"k{j}": f"v{i}-{j}" for j in range(5)})
    refs = [SecretRef(openbao_kv, f"p{i}", f"k{j}") for i in range(20) for j in range(5)]
    vault = make_vault()
    values = vault.resolve(refs)
    assert vault.reads == 20
    assert values[SecretRef(openbao_kv, "p7", "k3")].reveal() == "v7-3"


def test_pinned_versions_are_read_separately(
    openbao: OpenBaoServer, openbao_kv: str, make_vault: VaultFactory
) -> None:
    openbao.kv_put(openbao_kv, "app", {"password": "one"})
    openbao.kv_put(openbao_kv, "app", {"password": "two"})
    current = SecretRef(openbao_kv, "app", "password")
    first = SecretRef(openbao_kv, "app", "password", version=1)
    vault = make_vault()
    values = vault.resolve([current, first])
    assert values[current].reveal() == "two"
    assert values[first].reveal() == "one"
    assert vault.versions([current, first]) == {current: 2, first: 1}
    assert vault.reads == 2


def test_versions_read_each_path_once_to_prove_the_keys(
    openbao: OpenBaoServer, openbao_kv: str, make_vault: VaultFactory
) -> None:
    openbao.kv_put(openbao_kv, "app", {"password": "x", "user": "y"})
    refs = [SecretRef(openbao_kv, "app", key) for key in ("password", "user")]
    vault = make_vault()
    assert vault.versions(refs) == {ref: 1 for ref in refs}
    assert vault.reads == 1
    # The values read for the plan serve the connectivity tests: no second read.
    assert vault.resolve(refs)[refs[1]].reveal() == "y"
    assert vault.reads == 1


def test_a_run_sees_one_snapshot_and_the_next_run_sees_changes(
    openbao: OpenBaoServer, openbao_kv: str, make_vault: VaultFactory
) -> None:
    """A session is one command run: what it read once it keeps (the plan and the
    tests of an apply see the same version); a new run sees what moved."""
    ref = SecretRef(openbao_kv, "moving", "k")
    openbao.kv_put(openbao_kv, "moving", {"k": "1"})
    vault = make_vault()
    assert vault.versions([ref])[ref] == 1
    openbao.kv_put(openbao_kv, "moving", {"k": "2"})
    assert vault.versions([ref])[ref] == 1
    assert vault.resolve([ref])[ref].reveal() == "1"
    assert make_vault().versions([ref])[ref] == 2


def test_kv_v1_mount(openbao: OpenBaoServer, make_vault: VaultFactory) -> None:
    openbao.enable_kv("kv1", 1)
    openbao.kv_put("kv1", "erelease/ncs", {"password": "v1pw", "count": 3})
    vault = make_vault()
    ref = parse_ref("ref+vault://kv1/erelease/ncs#password")
    assert vault.resolve([ref])[ref].reveal() == "v1pw"
    assert (
        vault.resolve([SecretRef("kv1", "erelease/ncs", "count")])[
            SecretRef("kv1", "erelease/ncs", "count")
        ].reveal()
        == "3"
    )
    assert vault.versions([ref]) == {ref: None}
    assert vault.reads == 1
    meta = vault.metadata(ref)
    assert meta is not None and meta.kv_version == 1 and meta.current_version is None
    with pytest.raises(SecretsError, match="KV version 1 mount, which keeps no versions"):
        vault.resolve([SecretRef("kv1", "erelease/ncs", "password", version=2)])
    with pytest.raises(SecretsError, match="secret kv1/erelease/none not found"):
        vault.versions([SecretRef("kv1", "erelease/none", "password")])


def test_metadata(openbao: OpenBaoServer, openbao_kv: str, make_vault: VaultFactory) -> None:
    vault = make_vault()
    ref = SecretRef(openbao_kv, "incoming/cfnc")
    assert vault.metadata(ref) is None
    openbao.kv_put(openbao_kv, "incoming/cfnc", {"client_id": "a"})
    openbao.kv_put(openbao_kv, "incoming/cfnc", {"client_id": "b"})
    meta = vault.metadata(ref)
    assert meta is not None
    assert (meta.current_version, meta.kv_version, meta.custom_metadata) == (2, 2, {})
    assert vault.reads == 0


def test_read_all(openbao: OpenBaoServer, openbao_kv: str, make_vault: VaultFactory) -> None:
    openbao.kv_put(openbao_kv, "incoming/cfnc", {"client_id": "id", "client_secret": "s"})
    values, version = make_vault().read_all(SecretRef(openbao_kv, "incoming/cfnc"))
    assert {k: v.reveal() for k, v in values.items()} == {"client_id": "id", "client_secret": "s"}
    assert version == 1


def test_missing_secret(openbao_kv: str, make_vault: VaultFactory) -> None:
    vault = make_vault()
    ref = SecretRef(openbao_kv, "erelease/absent", "password")
    with pytest.raises(SecretsError) as info:
        vault.resolve([ref])
    assert f"secret {openbao_kv}/erelease/absent not found in Vault at http://127.0.0.1" in str(
        info.value
    )
    assert f"bao kv put -mount={openbao_kv} erelease/absent" in str(info.value)
    with pytest.raises(SecretsError, match="not found"):
        vault.versions([ref])
    with pytest.raises(SecretsError, match="not found"):
        vault.read_all(ref)


def test_missing_key_lists_key_names(
    openbao: OpenBaoServer, openbao_kv: str, make_vault: VaultFactory
) -> None:
    openbao.kv_put(openbao_kv, "app", {"user": "u", "pass": "hunter2"})
    with pytest.raises(SecretsError) as info:
        make_vault().resolve([SecretRef(openbao_kv, "app", "password")])
    message = str(info.value)
    assert "has no key 'password'; keys present: pass, user" in message
    assert "hunter2" not in message and f"{openbao_kv}/app (version 1)" in message


def test_deleted_and_destroyed_versions(
    openbao: OpenBaoServer, openbao_kv: str, make_vault: VaultFactory
) -> None:
    for value in ("a", "b", "c"):
        openbao.kv_put(openbao_kv, "app", {"k": value})
    client = openbao.client()
    client.secrets.kv.v2.delete_secret_versions("app", versions=[1], mount_point=openbao_kv)
    client.secrets.kv.v2.destroy_secret_versions("app", versions=[2], mount_point=openbao_kv)
    vault = make_vault()
    deleted = SecretRef(openbao_kv, "app", "k", version=1)
    destroyed = SecretRef(openbao_kv, "app", "k", version=2)
    for call in (vault.versions, vault.resolve):
        with pytest.raises(SecretsError, match=r"version 1 of secret .*/app was deleted"):
            call([deleted])
        with pytest.raises(SecretsError, match=r"version 2 of secret .*/app was destroyed"):
            call([destroyed])
    with pytest.raises(SecretsError, match=r"version 9 of secret .*/app does not exist"):
        vault.versions([SecretRef(openbao_kv, "app", "k", version=9)])
    # the current version (3) is unaffected
    assert vault.versions([SecretRef(openbao_kv, "app", "k")]) == {
        SecretRef(openbao_kv, "app", "k"): 3
    }
    client.secrets.kv.v2.delete_latest_version_of_secret("app", mount_point=openbao_kv)
    with pytest.raises(SecretsError, match="bao kv undelete"):
        make_vault().resolve([SecretRef(openbao_kv, "app", "k")])
    with pytest.raises(SecretsError, match=r"version 3 of secret .* was deleted"):
        make_vault().versions([SecretRef(openbao_kv, "app", "k")])


def test_namespace(openbao: OpenBaoServer, make_vault: VaultFactory) -> None:
    openbao.create_namespace("district-42")
    openbao.enable_kv("secret", 2, namespace="district-42")
    openbao.kv_put("secret", "erelease/ns-only", {"k": "in-namespace"}, namespace="district-42")
    ref = SecretRef("secret", "erelease/ns-only", "k")
    assert make_vault(namespace="district-42").resolve([ref])[ref].reveal() == "in-namespace"
    with pytest.raises(SecretsError, match="not found"):
        make_vault().resolve([ref])
    # BAO_NAMESPACE is honoured when settings name none
    env = {"BAO_ADDR": openbao.addr, "BAO_TOKEN": openbao.root_token}
    vault = make_vault(environ={**env, "BAO_NAMESPACE": "district-42"})
    assert vault.resolve([ref])[ref].reveal() == "in-namespace"
    with pytest.raises(SecretsError, match=r"\(namespace district-42\)"):
        vault.resolve([SecretRef("secret", "nothing-here", "k")])


def test_closed_session_refuses(make_vault: VaultFactory, openbao_kv: str) -> None:
    vault = make_vault()
    vault.close()
    vault.close()
    with pytest.raises(SecretsError, match="closed"):
        vault.resolve([SecretRef(openbao_kv, "x", "k")])


def test_context_manager_and_lazy_login() -> None:
    # no token anywhere and nothing listening: constructing and closing never touch Vault
    with Vault(VaultSettings(address="http://127.0.0.1:9"), environ={}) as vault:
        assert vault.reads == 0 and vault.address == "http://127.0.0.1:9"
