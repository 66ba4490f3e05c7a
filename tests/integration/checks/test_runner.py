"""Retries, deadlines and the concurrency bound, observed at the simulator."""

from __future__ import annotations

import time

from erelease.checks import run_checks
from erelease.devtools.vendorsim import Mode, VendorSim
from erelease.settings import TestSettings as CheckSettings
from tests.fixtures.vendor import new_client
from tests.integration.checks.helpers import closed_port, outgoing


class TestRetries:
    def test_flaky_vendor_succeeds_after_retries(self, vendor: VendorSim) -> None:
        client = new_client(vendor, Mode.FLAKY, fail_first=2)
        [result] = run_checks([outgoing(vendor, client)], settings=CheckSettings(retries=2))
        assert result.reason == "ok", result.message
        assert vendor.stats(client.client_id).token_requests == 3

    def test_retries_run_out(self, vendor: VendorSim) -> None:
        client = new_client(vendor, Mode.FLAKY, fail_first=5)
        [result] = run_checks([outgoing(vendor, client)], settings=CheckSettings(retries=1))
        assert result.reason == "http_status"
        assert "HTTP 503" in result.message and "(2 attempts)" in result.message
        assert vendor.stats(client.client_id).token_requests == 2

    def test_invalid_client_is_not_retried(self, vendor: VendorSim) -> None:
        client = new_client(vendor, Mode.BAD_CLIENT)
        [result] = run_checks([outgoing(vendor, client)], settings=CheckSettings(retries=3))
        assert result.reason == "invalid_client"
        assert vendor.stats(client.client_id).token_requests == 1

    def test_invalid_grant_is_not_retried(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        target = outgoing(vendor, client, password="wrong-password")
        [result] = run_checks([target], settings=CheckSettings(retries=3))
        assert result.reason == "invalid_grant"
        assert vendor.stats(client.client_id).token_requests == 1

    def test_retry_after_is_honoured(self, vendor: VendorSim) -> None:
        client = new_client(vendor, Mode.RATE_LIMITED, fail_first=1, retry_after=1)
        started = time.monotonic()
        [result] = run_checks([outgoing(vendor, client)], settings=CheckSettings(retries=2))
        assert result.reason == "ok", result.message
        assert time.monotonic() - started >= 1.0
        assert vendor.stats(client.client_id).token_requests == 2

    def test_retry_after_beyond_the_timeout_fails_fast(self, vendor: VendorSim) -> None:
        client = new_client(vendor, Mode.RATE_LIMITED, fail_first=1, retry_after=60)
        settings = CheckSettings(timeout=3, retries=2)
        [result] = run_checks([outgoing(vendor, client)], settings=settings)
        assert result.reason == "http_status"
        assert "HTTP 429" in result.message
        assert "no time left to retry" in result.message  # did not sleep into the deadline
        assert vendor.stats(client.client_id).token_requests == 1

    def test_connect_errors_are_retried(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        url = f"http://127.0.0.1:{closed_port()}/oauth/token"
        [result] = run_checks(
            [outgoing(vendor, client, token_url=url)], settings=CheckSettings(retries=2)
        )
        assert result.reason == "connect"
        assert "(3 attempts)" in result.message


class TestBounds:
    def test_a_slow_vendor_does_not_delay_the_others(self, vendor: VendorSim) -> None:
        slow = new_client(vendor, Mode.SLOW, delay=5.0)
        fast = new_client(vendor)
        targets = [outgoing(vendor, slow, "slow")] + [
            outgoing(vendor, fast, f"fast-{i}") for i in range(6)
        ]
        seen: list[str] = []
        results = run_checks(
            targets,
            settings=CheckSettings(concurrency=2, timeout=0.8),
            progress=lambda r: seen.append(r.name),
        )
        assert [r.reason for r in results] == ["timeout"] + ["ok"] * 6
        assert results[0].duration_ms >= 750
        # The fast ones all finished on the other slot while the slow one waited,
        # and the slow one was given up on while the vendor still held it.
        assert seen[-1] == "slow"
        assert vendor.stats(slow.client_id).in_flight == 1

    def test_concurrency_is_bounded(self, vendor: VendorSim) -> None:
        client = new_client(vendor, Mode.SLOW, delay=0.1)
        targets = [outgoing(vendor, client, f"t{i}") for i in range(24)]
        results = run_checks(targets, settings=CheckSettings(concurrency=4))
        assert all(r.reason == "ok" for r in results)
        assert [r.name for r in results] == [f"t{i}" for i in range(24)]
        stats = vendor.stats(client.client_id)
        assert stats.token_requests == 24
        assert stats.max_concurrent == 4

    def test_concurrency_one_is_sequential(self, vendor: VendorSim) -> None:
        client = new_client(vendor, Mode.SLOW, delay=0.02)
        targets = [outgoing(vendor, client, f"t{i}") for i in range(5)]
        run_checks(targets, settings=CheckSettings(concurrency=1))
        assert vendor.stats(client.client_id).max_concurrent == 1

    def test_progress_sees_every_result(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        targets = [outgoing(vendor, client, f"t{i}") for i in range(5)]
        seen: list[str] = []
        run_checks(targets, settings=CheckSettings(), progress=lambda r: seen.append(r.name))
        assert sorted(seen) == [f"t{i}" for i in range(5)]
