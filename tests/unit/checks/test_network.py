"""The address policy and TLS trust, without touching the network."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from erelease.checks import FORBIDDEN_NETWORKS, is_forbidden
from erelease.checks._network import build_ssl_context, check_addresses, find_ssl_error
from erelease.checks._outcome import CheckFailure
from erelease.errors import ConfigError


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.0.1",
        "169.254.255.255",
        "fe80::1",
        "fe80::a:b%eth0",
        "febf::1",
        "::ffff:169.254.169.254",
        "fd00:ec2::254",
        "100.100.100.200",
        # IPv6 forms that carry a forbidden IPv4 address
        "::ffff:a9fe:a9fe",
        "::ffff:100.100.100.200",
        "64:ff9b::169.254.169.254",  # NAT64, RFC 6052
        "::169.254.169.254",  # IPv4-compatible, RFC 4291 §2.5.5.1
        "2002:a9fe:a9fe::1",  # 6to4, RFC 3056
    ],
)
def test_forbidden(address: str) -> None:
    assert is_forbidden(address)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "10.0.0.1",
        "192.168.1.1",
        "8.8.8.8",
        "2001:db8::1",
        "fec0::1",
        "169.253.0.1",
        "::",
        "::ffff:8.8.8.8",
        "64:ff9b::8.8.8.8",
        "2002:808:808::1",
    ],
)
def test_allowed(address: str) -> None:
    assert not is_forbidden(address)


def test_spec_ranges_are_covered() -> None:
    networks = {str(n) for n in FORBIDDEN_NETWORKS}
    assert {"169.254.0.0/16", "fe80::/10"} <= networks


def test_a_host_is_refused_if_any_address_is_forbidden() -> None:
    with pytest.raises(CheckFailure) as info:
        check_addresses("vendor.example", ["93.184.216.34", "169.254.169.254"])
    assert info.value.reason == "connect"
    assert "vendor.example" in info.value.message
    assert "169.254.169.254" in info.value.message
    assert "link-local" in info.value.message
    assert not info.value.retryable


def test_the_message_names_the_address_a_name_resolved_to() -> None:
    with pytest.raises(CheckFailure) as info:
        check_addresses("meta.vendor.example", ["169.254.169.254"])
    assert info.value.message.startswith(
        "refused to connect to meta.vendor.example (it resolves to 169.254.169.254): "
    )


def test_a_host_with_only_good_addresses_passes() -> None:
    check_addresses("vendor.example", ["93.184.216.34", "2001:db8::1"])


class TestTrust:
    def test_verification_is_on(self) -> None:
        context = build_ssl_context(None)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname

    def test_ca_bundle_adds_to_the_default_store(self, tmp_path: Path) -> None:
        ca = trustme.CA()
        path = tmp_path / "district-ca.pem"
        ca.cert_pem.write_to_path(str(path))
        before = len(build_ssl_context(None).get_ca_certs())
        after = len(build_ssl_context(str(path)).get_ca_certs())
        assert after == before + 1

    def test_missing_ca_bundle_is_a_config_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as info:
            build_ssl_context(str(tmp_path / "nope.pem"))
        assert "tests.caBundle" in str(info.value)

    def test_garbage_ca_bundle_is_a_config_error(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.pem"
        path.write_text("not a certificate")
        with pytest.raises(ConfigError):
            build_ssl_context(str(path))


def test_find_ssl_error_walks_the_chain() -> None:
    inner = ssl.SSLCertVerificationError(1, "certificate verify failed")
    try:
        try:
            raise inner
        except ssl.SSLError as exc:
            raise OSError("wrapped") from exc
    except OSError as outer:
        assert find_ssl_error(outer) is inner
    assert find_ssl_error(ValueError("x")) is None
