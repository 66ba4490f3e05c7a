"""Which KV v2 version a reference resolves to, decided from metadata alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from erelease.errors import SecretsError
from erelease.secrets.kv import check_version

WHERE = "Vault at https://vault.example"


def _meta(current: int, **versions: dict[str, Any]) -> dict[str, Any]:
    return {"current_version": current, "versions": versions}


def _v(deleted: str = "", destroyed: bool = False) -> dict[str, Any]:
    return {
        "created_time": "2024-01-01T00:00:00Z",
        "deletion_time": deleted,
        "destroyed": destroyed,
    }


def test_current_and_pinned() -> None:
    meta = _meta(3, **{"1": _v(), "2": _v(), "3": _v()})
    assert check_version("secret/app", meta, None, WHERE) == 3
    assert check_version("secret/app", meta, 2, WHERE) == 2


def test_deleted_destroyed_missing_pruned() -> None:
    past = "2024-05-01T10:00:00.123456789Z"
    meta = _meta(4, **{"2": _v(deleted=past), "3": _v(destroyed=True), "4": _v()})
    with pytest.raises(SecretsError, match="version 2 of secret secret/app was deleted"):
        check_version("secret/app", meta, 2, WHERE)
    with pytest.raises(SecretsError, match="bao kv undelete -mount=secret -versions=2 app"):
        check_version("secret/app", meta, 2, WHERE)
    with pytest.raises(SecretsError, match=r"destroyed .* cannot be restored"):
        check_version("secret/app", meta, 3, WHERE)
    with pytest.raises(SecretsError, match=r"does not exist in .* \(the current version is 4\)"):
        check_version("secret/app", meta, 7, WHERE)
    with pytest.raises(SecretsError, match="pruned by max_versions"):
        check_version("secret/app", meta, 1, WHERE)
    with pytest.raises(SecretsError, match="has no versions"):
        check_version("secret/app", _meta(0), None, WHERE)


def test_scheduled_deletion_is_still_readable() -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert check_version("secret/app", _meta(1, **{"1": _v(deleted=later)}), None, WHERE) == 1
