"""The runner's promises that need no server: order, progress, policy, settings."""

from __future__ import annotations

import pytest

from erelease.checks import OutgoingTarget, Target, Unavailable, run_checks
from erelease.errors import UsageError
from erelease.model import CheckResult, Secret
from erelease.settings import TestSettings as CheckSettings


def outgoing(name: str, token_url: str, upload_host: str = "127.0.0.1") -> OutgoingTarget:
    return OutgoingTarget(
        address=f"outgoing/{name}",
        name=name,
        token_url=token_url,
        upload_host=upload_host,
        upload_port=443,
        upload_tls=True,
        consumer_key=Secret("key"),
        consumer_secret=Secret("secret"),
        username=Secret("user"),
        password=Secret("password"),
    )


def test_no_targets() -> None:
    assert run_checks([], settings=CheckSettings()) == []


def test_unavailable_secret_fails_without_network() -> None:
    seen: list[CheckResult] = []
    target = Unavailable(
        address="outgoing/ncs",
        kind="outgoing",
        name="ncs",
        message="cannot read secret/erelease/ncs#password: permission denied",
    )
    [result] = run_checks([target], settings=CheckSettings(), progress=seen.append)
    assert result.status == "failed"
    assert result.reason == "secret_unavailable"
    assert result.duration_ms == 0
    assert "permission denied" in result.message
    assert result.checked_at.endswith("Z")
    assert seen == [result]


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam",
        "https://[fe80::1]:8443/oauth/token",
        "http://[::ffff:169.254.169.254]/oauth/token",
    ],
)
def test_link_local_token_url_is_refused(url: str) -> None:
    [result] = run_checks([outgoing("meta", url)], settings=CheckSettings(retries=2))
    assert result.reason == "connect"
    assert "link-local" in result.message
    assert "attempts" not in result.message  # refused at once, never retried


def test_results_keep_input_order_and_report_progress() -> None:
    targets: list[Target] = [
        outgoing("a", "http://169.254.169.254/x"),
        Unavailable(address="incoming/b", kind="incoming", name="b", message="no"),
        outgoing("c", "http://[fe80::2]/x"),
    ]
    seen: list[str] = []
    results = run_checks(targets, settings=CheckSettings(), progress=lambda r: seen.append(r.name))
    assert [r.name for r in results] == ["a", "b", "c"]
    assert [r.kind for r in results] == ["outgoing", "incoming", "outgoing"]
    assert sorted(seen) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "settings",
    [CheckSettings(concurrency=0), CheckSettings(timeout=0), CheckSettings(retries=-1)],
)
def test_impossible_settings_are_usage_errors(settings: CheckSettings) -> None:
    with pytest.raises(UsageError):
        run_checks([], settings=settings)


def test_invalid_url_is_a_result_not_an_exception() -> None:
    [result] = run_checks([outgoing("bad", "ftp://vendor.example/x")], settings=CheckSettings())
    assert result.status == "failed"
    assert result.reason == "connect"
