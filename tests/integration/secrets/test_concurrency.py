"""Distinct paths are read concurrently, never more at once than the bound, each once."""

from __future__ import annotations

import threading
import time

from erelease.model import SecretRef
from erelease.secrets import Vault
from erelease.settings import VaultSettings

from .conftest import Answer, FakeHTTP, Seen
from .fakevault import kv2_read, vault_like


class _InFlight:
    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.lock = threading.Lock()

    def read(self, seen: Seen) -> Answer:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(0.05)
        with self.lock:
            self.now -= 1
        return kv2_read({"k": seen.path})


def test_reads_are_concurrent_and_bounded() -> None:
    counter = _InFlight()
    refs = [SecretRef("secret", f"p{i}", "k") for i in range(12)]
    with FakeHTTP(vault_like(counter.read)) as fake:
        settings = VaultSettings(address=fake.url, timeout=5)
        with Vault(settings, environ={"BAO_TOKEN": "t"}, concurrency=4) as vault:
            started = time.monotonic()
            values = vault.resolve(refs)
            elapsed = time.monotonic() - started
    assert values[refs[3]].reveal() == "/v1/secret/data/p3"
    assert counter.peak == 4
    assert elapsed < 12 * 0.05  # faster than one after another


def test_concurrent_callers_share_one_read() -> None:
    counter = _InFlight()
    with FakeHTTP(vault_like(counter.read)) as fake:
        settings = VaultSettings(address=fake.url, timeout=5)
        with Vault(settings, environ={"BAO_TOKEN": "t"}) as vault:
            barrier = threading.Barrier(4)
            errors: list[BaseException] = []

            def resolve() -> None:
                barrier.wait()
                try:
                    vault.resolve([SecretRef("secret", "shared", "k")])
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=resolve) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert not errors
            assert vault.reads == 1
            vault.resolve([SecretRef("secret", "shared", "k")])
            assert vault.reads == 1
    assert len([s for s in fake.seen if "/data/shared" in s.path]) == 1
