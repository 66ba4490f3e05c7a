"""Every reason, produced by a real local server (or a real network condition)."""

from __future__ import annotations

import socket

import pytest

from erelease.checks import REASONS, Target, Unavailable, run_checks
from erelease.devtools.vendorsim import Mode, VendorSim
from erelease.model import CheckResult
from erelease.settings import TestSettings as CheckSettings
from tests.fixtures.vendor import new_client
from tests.integration.checks.helpers import closed_port, incoming, outgoing

SETTINGS = CheckSettings(concurrency=4, timeout=5, retries=0)


def check_one(target: Target, settings: CheckSettings = SETTINGS) -> CheckResult:
    [result] = run_checks([target], settings=settings)
    assert result.status == ("valid" if result.reason == "ok" else "failed")
    assert result.reason in REASONS
    assert isinstance(result.duration_ms, int)
    return result


class TestOutgoing:
    def test_valid_password_grant_with_basic(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        result = check_one(outgoing(vendor, client))
        assert (result.status, result.reason) == ("valid", "ok")
        assert "TCP" in result.message
        assert vendor.stats(client.client_id).token_requests == 1

    def test_valid_client_credentials_in_the_body(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        target = outgoing(
            vendor,
            client,
            grant_type="client_credentials",
            client_auth="body",
            username=None,
            password=None,
        )
        assert check_one(target).reason == "ok"

    def test_basic_credentials_survive_reserved_characters(self, vendor: VendorSim) -> None:
        # The simulator form-decodes Basic credentials (RFC 6749 §2.3.1).
        client = new_client(vendor, client_id="key with:colon+plus", client_secret="s%cr:t/ +é")
        assert check_one(outgoing(vendor, client)).reason == "ok"

    @pytest.mark.parametrize(
        ("mode", "reason", "text"),
        [
            (Mode.BAD_CLIENT, "invalid_client", "HTTP 401 invalid_client"),
            (Mode.BAD_GRANT, "invalid_grant", "HTTP 400 invalid_grant"),
            (Mode.UNAUTHORIZED_CLIENT, "http_status", "unauthorized_client"),
            (Mode.HTML, "bad_response", "HTML page"),
            (Mode.ERROR, "http_status", "HTTP 500"),
            (Mode.MISSING_TOKEN, "bad_response", "without an access_token"),
            (Mode.WRONG_TOKEN_TYPE, "bad_response", "'mac'"),
        ],
    )
    def test_vendor_failure_modes(
        self, vendor: VendorSim, mode: Mode, reason: str, text: str
    ) -> None:
        client = new_client(vendor, mode)
        result = check_one(outgoing(vendor, client))
        assert result.reason == reason
        assert text in result.message

    def test_wrong_secret_is_invalid_client(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        result = check_one(outgoing(vendor, client, consumer_secret="not-the-secret"))
        assert result.reason == "invalid_client"
        assert "consumer key and secret" in result.message

    def test_wrong_password_is_invalid_grant(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        result = check_one(outgoing(vendor, client, password="not-the-password"))
        assert result.reason == "invalid_grant"
        assert "user name and password" in result.message

    def test_dns(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        target = outgoing(vendor, client, token_url="https://nonexistent.invalid/oauth/token")
        result = check_one(target)
        assert result.reason == "dns"
        assert "nonexistent.invalid" in result.message

    def test_connect(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        target = outgoing(vendor, client, token_url=f"http://127.0.0.1:{closed_port()}/oauth/token")
        result = check_one(target)
        assert result.reason == "connect"
        assert "Connection refused" in result.message

    def test_tls_untrusted_certificate(self, vendor_tls: VendorSim) -> None:
        client = new_client(vendor_tls)
        result = check_one(outgoing(vendor_tls, client))
        assert result.reason == "tls"
        assert "certificate verify failed" in result.message
        assert vendor_tls.stats(client.client_id).requests == 0

    def test_timeout(self, vendor: VendorSim) -> None:
        client = new_client(vendor, Mode.SLOW, delay=3.0)
        result = check_one(outgoing(vendor, client), CheckSettings(timeout=0.5, retries=0))
        assert result.reason == "timeout"
        assert "within 0.5s" in result.message
        assert 450 <= result.duration_ms < 1500

    def test_upload_port_closed(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        result = check_one(outgoing(vendor, client, upload_port=closed_port()))
        assert result.reason == "upload_unreachable"
        assert result.message.startswith("tcp:")

    def test_upload_not_speaking_tls(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        result = check_one(outgoing(vendor, client, upload_tls=True))
        assert result.reason == "upload_unreachable"
        assert result.message.startswith("tls:")

    def test_upload_untrusted_certificate(self, vendor: VendorSim, vendor_tls: VendorSim) -> None:
        client = new_client(vendor)
        target = outgoing(vendor, client, upload_tls=True, upload_port=vendor_tls.port)
        result = check_one(target)
        assert result.reason == "upload_unreachable"
        assert result.message.startswith("tls:")
        assert "certificate verify failed" in result.message

    def test_upload_tls_handshake_that_never_ends(self, vendor: VendorSim) -> None:
        # A listener that completes TCP (the kernel's backlog) but never answers TLS.
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            port = silent.getsockname()[1]
            client = new_client(vendor)
            target = outgoing(vendor, client, upload_tls=True, upload_port=port)
            result = check_one(target, CheckSettings(timeout=1, retries=0))
        assert result.reason == "upload_unreachable"
        assert result.message.startswith("tls:")
        assert "within 1s" in result.message

    def test_upload_host_unresolvable(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        result = check_one(outgoing(vendor, client, upload_host="nonexistent.invalid"))
        assert result.reason == "upload_unreachable"
        assert "nonexistent.invalid" in result.message

    def test_upload_link_local_is_refused(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        result = check_one(outgoing(vendor, client, upload_host="169.254.169.254"))
        assert result.reason == "connect"
        assert "link-local" in result.message

    def test_missing_password_is_secret_unavailable(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        result = check_one(outgoing(vendor, client, password=None))
        assert result.reason == "secret_unavailable"
        assert vendor.stats(client.client_id).requests == 0

    def test_unavailable_target_makes_no_request(self, vendor: VendorSim) -> None:
        before = vendor.requests
        target = Unavailable("outgoing/x", "outgoing", "x", "Vault: permission denied")
        assert check_one(target).reason == "secret_unavailable"
        assert vendor.requests == before


class TestIncoming:
    def test_valid(self, vendor: VendorSim) -> None:
        client = new_client(vendor, username=None, password=None)
        result = check_one(incoming(vendor, client))
        assert result.reason == "ok"
        assert result.kind == "incoming"
        # the token request and the bearer GET
        assert vendor.stats(client.client_id).requests == 2

    def test_wrong_secret(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        result = check_one(incoming(vendor, client, client_secret="rotated-away"))
        assert result.reason == "invalid_client"
        assert "client ID and secret" in result.message
        assert vendor.stats(client.client_id).requests == 1

    def test_etranscripts_url_not_found(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        result = check_one(incoming(vendor, client, etranscripts_url=vendor.url + "/nowhere"))
        assert result.reason == "http_status"
        assert "HTTP 404" in result.message

    def test_serve_not_running_is_connect(self, vendor: VendorSim) -> None:
        client = new_client(vendor)
        base = f"http://127.0.0.1:{closed_port()}/campus"
        target = incoming(
            vendor,
            client,
            token_url=base + "/oauth2/token?appName=intMN",
            etranscripts_url=base + "/api/campus/transcript/eTranscripts",
        )
        assert check_one(target).reason == "connect"


class TestTrust:
    def test_ca_bundle_trusts_the_private_ca(self, vendor_tls: VendorSim) -> None:
        client = new_client(vendor_tls)
        settings = CheckSettings(timeout=5, retries=0, ca_bundle=vendor_tls.ca_pem_path)
        result = check_one(outgoing(vendor_tls, client), settings)
        assert result.reason == "ok", result.message
        assert "TLS" in result.message

    def test_certificate_is_checked_against_the_host_name(self, vendor_tls: VendorSim) -> None:
        # "localhost" is pinned to 127.0.0.1 but verified as "localhost" (SNI kept).
        client = new_client(vendor_tls)
        settings = CheckSettings(timeout=5, retries=0, ca_bundle=vendor_tls.ca_pem_path)
        target = outgoing(
            vendor_tls,
            client,
            token_url=vendor_tls.token_url.replace("127.0.0.1", "localhost"),
            upload_host="localhost",
        )
        assert check_one(target, settings).reason == "ok"
