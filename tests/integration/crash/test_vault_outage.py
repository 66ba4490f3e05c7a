"""Vault or PostgreSQL going away in the middle of an apply of many incoming connections.

Each failure ends in one line and exit 1 with the registry exactly as before; once
the server is back, a plain apply converges with no manual step (SPEC §5.3).
"""

from __future__ import annotations

from typing import Any

import pytest

from erelease.secrets.transport import Transport
from erelease.secrets.vault import Vault
from tests.integration.crash.conftest import District, terminate_backends

NAMES = [f"in{i}" for i in range(1, 6)]


@pytest.mark.parametrize("kind", ["metadata", "data"])
def test_vault_sealed_between_the_two_writes_of_one_credential(
    district: District, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The data and the custom metadata of a new secret are two requests: sealed
    between them, the next apply must still recognise the secret as its own."""
    for name in NAMES:
        district.write_incoming(name)
    before = district.snapshot()
    original = Transport.request
    fired: list[str] = []

    def request(self: Transport, method: str, api_path: str, **kwargs: Any) -> Any:
        reply = original(self, method, api_path, **kwargs)
        if not fired and method == "post" and api_path.endswith(f"/{kind}/{district.prefix}/in3"):
            fired.append(api_path)
            district.bao.seal()
        return reply

    monkeypatch.setattr(Transport, "request", request)
    failed = district.apply()
    assert fired and failed.exit_code == 1, failed.stderr
    assert "sealed" in failed.stderr and len(failed.stderr.strip().splitlines()) == 1
    assert district.snapshot() == before

    district.bao.unseal()
    monkeypatch.setattr(Transport, "request", original)
    converged = district.apply()
    assert converged.exit_code == 0, converged.stderr
    district.assert_converged(NAMES)


def test_vault_sealed_after_two_of_five_credentials_are_written(
    district: District, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry stays as it was; the next apply adopts the two, mints three."""
    for name in NAMES:
        district.write_incoming(name)
    writes: list[int] = []
    original = Vault.write_credentials

    def write_credentials(self: Vault, *args: Any, **kwargs: Any) -> Any:
        version = original(self, *args, **kwargs)
        writes.append(1)
        if len(writes) == 2:
            district.bao.seal()
        return version

    monkeypatch.setattr(Vault, "write_credentials", write_credentials)
    before = district.snapshot()
    failed = district.apply()
    assert failed.exit_code == 1 and "sealed" in failed.stderr, failed.stderr
    assert district.snapshot() == before

    district.bao.unseal()
    assert district.bao.keys(district.prefix) == ["in1", "in2"]
    converged = district.apply()
    assert converged.exit_code == 0, converged.stderr
    district.assert_converged(NAMES)


def test_vault_sealed_before_an_incoming_delete(
    district: District, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in NAMES:
        district.write_incoming(name)
    assert district.apply().exit_code == 0
    district.remove("in2")
    district.remove("in4")
    before = district.snapshot()
    fired: list[int] = []
    original = Transport.request

    def seal_first(self: Transport, method: str, api_path: str, **kwargs: Any) -> Any:
        if method == "delete" and not fired:
            fired.append(1)
            district.bao.seal()
        return original(self, method, api_path, **kwargs)

    monkeypatch.setattr(Transport, "request", seal_first)
    failed = district.apply("--allow-delete")
    assert failed.exit_code == 1 and "sealed" in failed.stderr, failed.stderr
    assert district.snapshot() == before

    district.bao.unseal()
    converged = district.apply("--allow-delete")
    assert converged.exit_code == 0, converged.stderr
    district.assert_converged(["in1", "in3", "in5"])


def test_postgres_sessions_ended_during_the_vault_writes(
    district: District, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not district.state_url.startswith("postgresql"):
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    for name in NAMES:
        district.write_incoming(name)
    before = district.snapshot()
    writes: list[int] = []
    original = Vault.write_credentials

    def write_credentials(self: Vault, *args: Any, **kwargs: Any) -> Any:
        version = original(self, *args, **kwargs)
        writes.append(1)
        if len(writes) == 3:
            assert terminate_backends(district.state_url) >= 1
        return version

    monkeypatch.setattr(Vault, "write_credentials", write_credentials)
    failed = district.apply()
    assert failed.exit_code == 1, failed.stdout + failed.stderr
    assert "lost the connection holding the lock" in failed.stderr
    assert district.snapshot() == before

    monkeypatch.setattr(Vault, "write_credentials", original)
    converged = district.apply()
    assert converged.exit_code == 0, converged.stderr
    district.assert_converged(NAMES)
