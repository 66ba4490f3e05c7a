"""Every reason, produced by a real local server (or a real network condition)."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from erelease.checks import REASONS, Target, Unavailable, run_checks
from erelease.checks._network import Resolver
from erelease.devtools.vendorsim import Mode, VendorSim
from erelease.model import CheckResult
from erelease.settings import TestSettings as CheckSettings
from tests.fixtures.vendor import new_client
from tests.integration.checks.helpers import closed_port, incoming, outgoing

SETTINGS = CheckSettings(concurrency=4, timeout=5, retries=0)
SETTINGS_RETRYING = CheckSettings(concurrency=4, timeout=5, retries=2)


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
        assert result.duration_ms >= 450
        # The test gave up while the vendor was still working on the request.
        assert vendor.stats(client.client_id).in_flight == 1

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

    def test_token_endpoint_that_hangs_up_is_connect(self, vendor: VendorSim) -> None:
        # A listener that reads the request and closes without a status line.
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            port = listener.getsockname()[1]
            stop = threading.Event()

            def hang_up() -> None:
                listener.settimeout(0.2)
                while not stop.is_set():
                    try:
                        conn, _ = listener.accept()
                    except OSError:
                        continue
                    with conn:
                        conn.recv(65536)

            thread = threading.Thread(target=hang_up, daemon=True)
            thread.start()
            try:
                client = new_client(vendor)
                target = outgoing(vendor, client, token_url=f"http://127.0.0.1:{port}/oauth/token")
                result = check_one(target, CheckSettings(timeout=5, retries=1))
            finally:
                stop.set()
                thread.join()
        assert result.reason == "connect"
        assert "closed the connection without answering" in result.message
        assert "(2 attempts)" in result.message  # a broken connection is worth a retry

    @pytest.mark.parametrize("status", [302, 307, 308])
    def test_a_redirect_is_not_followed(self, vendor: VendorSim, status: int) -> None:
        # The redirect points at a server that would accept the credentials: it
        # must never see them (a redirect to another host must not carry them).
        client = new_client(vendor)

        class Redirect(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.send_response(status)
                self.send_header("Location", vendor.token_url)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        with ThreadingHTTPServer(("127.0.0.1", 0), Redirect) as server:
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                url = f"http://127.0.0.1:{server.server_address[1]}/oauth/token"
                result = check_one(outgoing(vendor, client, token_url=url))
            finally:
                server.shutdown()
        assert result.reason == "http_status"
        assert f"HTTP {status}, a redirect to http://127.0.0.1:{vendor.port}/" in result.message
        assert vendor.stats(client.client_id).requests == 0

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


class TestAddressPolicy:
    """Names are resolved once and every answer is checked before connecting."""

    @pytest.fixture
    def dns(self, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
        # Our own seam: the lookup behind Resolver (the OS resolver can only be
        # pointed at a name with an /etc/hosts entry, which tests must not write).
        answers: dict[str, list[str]] = {}
        real = Resolver._lookup

        async def lookup(host: str, port: int) -> list[str]:
            if host in answers:
                return answers[host]
            return await real(host, port)

        monkeypatch.setattr(Resolver, "_lookup", staticmethod(lookup))
        return answers

    def test_a_name_is_connected_to_at_the_address_it_resolved_to(
        self, vendor: VendorSim, dns: dict[str, list[str]]
    ) -> None:
        dns["token.vendor.test"] = ["127.0.0.1"]
        dns["upload.vendor.test"] = ["127.0.0.1"]
        client = new_client(vendor)
        token_url = vendor.token_url.replace("127.0.0.1", "token.vendor.test")
        target = outgoing(vendor, client, token_url=token_url, upload_host="upload.vendor.test")
        assert check_one(target).reason == "ok"
        assert vendor.stats(client.client_id).token_requests == 1

    @pytest.mark.parametrize(
        "answer",
        [
            ["169.254.169.254"],
            ["127.0.0.1", "169.254.169.254"],  # one bad answer is enough
            ["::ffff:169.254.169.254"],
            ["fe80::1"],
        ],
    )
    def test_a_name_that_resolves_to_link_local_is_refused(
        self, vendor: VendorSim, dns: dict[str, list[str]], answer: list[str]
    ) -> None:
        dns["meta.vendor.test"] = answer
        client = new_client(vendor)
        token_url = vendor.token_url.replace("127.0.0.1", "meta.vendor.test")
        result = check_one(outgoing(vendor, client, token_url=token_url), SETTINGS_RETRYING)
        assert result.reason == "connect"
        assert "meta.vendor.test (it resolves to" in result.message
        assert "link-local" in result.message
        assert "attempts" not in result.message  # a refusal is never retried
        assert vendor.stats(client.client_id).requests == 0

    def test_an_upload_host_that_resolves_to_link_local_is_refused(
        self, vendor: VendorSim, dns: dict[str, list[str]]
    ) -> None:
        dns["upload.vendor.test"] = ["169.254.169.254"]
        client = new_client(vendor)
        result = check_one(outgoing(vendor, client, upload_host="upload.vendor.test"))
        assert result.reason == "connect"
        assert "upload.vendor.test (it resolves to 169.254.169.254)" in result.message


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
