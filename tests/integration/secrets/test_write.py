"""Writing minted credentials back: check-and-set, custom metadata, delete, KV v1."""

from __future__ import annotations

import pytest

from erelease.errors import CasConflict, SecretsError
from erelease.model import Secret, SecretRef
from erelease.secrets import SecretMeta
from tests.fixtures.openbao import OpenBaoServer

from .conftest import VaultFactory

MANAGED = {"managed-by": "erelease", "stack": "district-42", "connection": "incoming/cfnc"}


def _creds(n: int) -> dict[str, Secret]:
    return {"client_id": Secret(f"id{n}"), "client_secret": Secret(f"secret{n}")}


def test_create_then_rotate_with_cas(
    openbao: OpenBaoServer, openbao_kv: str, make_vault: VaultFactory
) -> None:
    ref = SecretRef(openbao_kv, "incoming/cfnc")
    vault = make_vault()
    assert vault.write_credentials(ref, data=_creds(1), cas=0, custom_metadata=MANAGED) == 1
    meta = vault.metadata(ref)
    assert meta is not None and meta.current_version == 1 and meta.custom_metadata == MANAGED
    values, version = vault.read_all(ref)
    assert values["client_secret"].reveal() == "secret1" and version == 1
    assert vault.write_credentials(ref, data=_creds(2), cas=1, custom_metadata=MANAGED) == 2
    values, version = vault.read_all(ref)  # the write dropped the cached read
    assert values["client_secret"].reveal() == "secret2" and version == 2
    stored = openbao.client().secrets.kv.v2.read_secret_version(
        "incoming/cfnc", mount_point=openbao_kv, raise_on_deleted_version=True
    )
    assert stored["data"]["data"] == {"client_id": "id2", "client_secret": "secret2"}


def test_custom_metadata_update_keeps_other_settings(
    openbao: OpenBaoServer, openbao_kv: str, make_vault: VaultFactory
) -> None:
    client = openbao.client()
    client.secrets.kv.v2.update_metadata(
        "incoming/keep", max_versions=3, mount_point=openbao_kv, delete_version_after="768h"
    )
    make_vault().write_credentials(
        SecretRef(openbao_kv, "incoming/keep"), data=_creds(1), cas=0, custom_metadata=MANAGED
    )
    meta = client.secrets.kv.v2.read_secret_metadata("incoming/keep", mount_point=openbao_kv)
    assert meta["data"]["max_versions"] == 3
    assert meta["data"]["delete_version_after"] == "768h0m0s"
    assert meta["data"]["custom_metadata"] == MANAGED


def test_create_only_conflicts_when_something_is_there(
    openbao: OpenBaoServer, openbao_kv: str, make_vault: VaultFactory
) -> None:
    openbao.kv_put(openbao_kv, "incoming/race", {"client_id": "theirs"})
    ref = SecretRef(openbao_kv, "incoming/race")
    with pytest.raises(CasConflict) as info:
        make_vault().write_credentials(ref, data=_creds(1), cas=0, custom_metadata=MANAGED)
    assert str(info.value) == (
        f"secret {openbao_kv}/incoming/race changed concurrently; re-run plan"
    )
    assert info.value.exit_code == 1


def test_rotate_conflicts_when_version_moved(
    openbao: OpenBaoServer, openbao_kv: str, make_vault: VaultFactory
) -> None:
    ref = SecretRef(openbao_kv, "incoming/moved")
    vault = make_vault()
    vault.write_credentials(ref, data=_creds(1), cas=0, custom_metadata=MANAGED)
    openbao.kv_put(openbao_kv, "incoming/moved", {"client_id": "someone else"})
    with pytest.raises(CasConflict, match="changed concurrently; re-run plan"):
        vault.write_credentials(ref, data=_creds(2), cas=1, custom_metadata=MANAGED)
    values, version = vault.read_all(ref)
    assert version == 2 and values["client_id"].reveal() == "someone else"


def test_delete_all_versions_and_metadata(
    openbao: OpenBaoServer, openbao_kv: str, make_vault: VaultFactory
) -> None:
    ref = SecretRef(openbao_kv, "incoming/gone")
    vault = make_vault()
    vault.write_credentials(ref, data=_creds(1), cas=0, custom_metadata=MANAGED)
    vault.write_credentials(ref, data=_creds(2), cas=1, custom_metadata=MANAGED)
    vault.read_all(ref)
    vault.delete_all(ref)
    assert vault.metadata(ref) is None
    with pytest.raises(SecretsError, match="not found"):
        vault.read_all(ref)
    vault.delete_all(ref)  # missing is fine
    # after a delete the path can be created again with cas=0
    assert vault.write_credentials(ref, data=_creds(3), cas=0, custom_metadata=MANAGED) == 1


def test_kv_v1_keeps_the_marks_in_the_secret(
    openbao: OpenBaoServer, make_vault: VaultFactory
) -> None:
    """KV v1 has no metadata and no CAS: the marks live in the secret and guard overwrites."""
    openbao.enable_kv("kv1", 1)
    ref = SecretRef("kv1", "incoming/v1-cfnc")
    vault = make_vault()
    vault.delete_all(ref)
    assert vault.write_credentials(ref, data=_creds(1), cas=0, custom_metadata=MANAGED) is None
    meta = vault.metadata(ref)
    assert meta is not None and meta.kv_version == 1 and meta.current_version is None
    assert meta.custom_metadata == MANAGED
    values, version = vault.read_all(ref)
    assert set(values) == {"client_id", "client_secret"} and version is None
    # A rotation (the engine has no version to pass on v1, so cas is 0) replaces our own secret.
    assert vault.write_credentials(ref, data=_creds(2), cas=0, custom_metadata=MANAGED) is None
    values, _ = vault.read_all(ref)
    assert values["client_secret"].reveal() == "secret2"
    # Another connection's marks, or none at all, are a conflict: nothing is overwritten.
    other = {**MANAGED, "connection": "incoming/other"}
    with pytest.raises(CasConflict, match="did not write for this connection"):
        vault.write_credentials(ref, data=_creds(3), cas=2, custom_metadata=other)
    foreign = SecretRef("kv1", "incoming/v1-foreign")
    openbao.kv_put("kv1", foreign.path, {"client_secret": "theirs"})
    with pytest.raises(CasConflict, match="KV version 1"):
        vault.write_credentials(foreign, data=_creds(4), cas=0, custom_metadata=MANAGED)
    stored = openbao.client().secrets.kv.v1.read_secret(foreign.path, mount_point="kv1")
    assert stored["data"] == {"client_secret": "theirs"}
    assert vault.metadata(foreign) == SecretMeta(None, 1, {})
    values, _ = vault.read_all(ref)
    assert values["client_secret"].reveal() == "secret2"
    vault.delete_all(ref)
    vault.delete_all(foreign)
    assert vault.metadata(ref) is None


def test_negative_cas_refused(openbao_kv: str, make_vault: VaultFactory) -> None:
    with pytest.raises(SecretsError, match="check-and-set"):
        make_vault().write_credentials(
            SecretRef(openbao_kv, "x"), data=_creds(1), cas=-1, custom_metadata={}
        )
