"""A canary secret sent in every way, in every outcome, shows up nowhere."""

from __future__ import annotations

import base64
import logging
from urllib.parse import quote_plus

import pytest

from erelease.checks import Target, run_checks
from erelease.devtools.vendorsim import Mode, VendorSim
from erelease.settings import TestSettings as CheckSettings
from tests.fixtures.common import CANARY
from tests.fixtures.vendor import new_client
from tests.integration.checks.helpers import closed_port, incoming, outgoing


def test_canary_appears_in_no_output(
    vendor: VendorSim,
    vendor_tls: VendorSim,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    good = new_client(vendor)
    echo_auth = new_client(vendor, Mode.ECHO_AUTH)
    targets: list[Target] = [
        outgoing(vendor, good, "ok"),
        outgoing(vendor, good, "body", client_auth="body"),
        # the vendor expects other values; the canary is what gets sent
        outgoing(vendor, new_client(vendor, password="other"), "grant", password=CANARY),
        outgoing(
            vendor, new_client(vendor, client_secret="other"), "client", consumer_secret=CANARY
        ),
        outgoing(vendor, new_client(vendor, Mode.HTML), "html"),
        outgoing(vendor, new_client(vendor, Mode.ECHO), "echo"),
        outgoing(vendor, echo_auth, "echo-auth"),
        incoming(vendor, echo_auth, "in-echo-auth"),
        outgoing(vendor, new_client(vendor, Mode.FLAKY, fail_first=9), "flaky"),
        outgoing(vendor, new_client(vendor, Mode.SLOW, delay=3), "slow"),
        outgoing(vendor, good, "refused", token_url=f"http://127.0.0.1:{closed_port()}/t"),
        outgoing(vendor_tls, new_client(vendor_tls), "tls"),
        incoming(vendor, good, "in-ok"),
        incoming(vendor, good, "in-bad", client_secret=CANARY + "x"),
    ]
    results = run_checks(targets, settings=CheckSettings(timeout=1, retries=1))
    reasons = {r.name: r.reason for r in results}
    assert reasons == {
        "ok": "ok",
        "body": "ok",
        "grant": "invalid_grant",
        "client": "invalid_client",
        "html": "bad_response",
        "echo": "invalid_grant",
        "echo-auth": "invalid_client",
        "in-echo-auth": "invalid_client",
        "flaky": "http_status",
        "slow": "timeout",
        "refused": "connect",
        "tls": "tls",
        "in-ok": "ok",
        "in-bad": "invalid_client",
    }
    echo = next(r for r in results if r.name == "echo")
    assert "wrong password *** for" in echo.message
    # The Basic header quoted back: base64 of id:secret is the secret, not a disguise.
    assert next(r for r in results if r.name == "echo-auth").message.count("Basic ***") == 1
    captured = capsys.readouterr()
    outputs = [repr(r) for r in results] + [caplog.text, captured.out, captured.err]
    forbidden = [
        CANARY,
        quote_plus(CANARY, safe=""),
        base64.b64encode(f"{good.client_id}:{CANARY}".encode()).decode(),
        base64.b64encode(f"{echo_auth.client_id}:{CANARY}".encode()).decode(),
        *vendor.issued_tokens(),
    ]
    assert len(vendor.issued_tokens()) >= 3
    for text in outputs:
        for value in forbidden:
            assert value not in text
