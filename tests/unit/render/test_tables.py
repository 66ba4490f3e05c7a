"""The Setup-page tables of ``erelease show`` and ``state list``."""

from __future__ import annotations

from typing import Any

import pytest

from erelease.model import CheckResult, ConnectionRecord, StackInfo
from erelease.render.data import record_dict
from erelease.render.style import Style
from erelease.render.tables import registry_tables, state_list, upload_address


@pytest.mark.parametrize(
    ("server", "port", "shown"),
    [
        ("https://127.0.0.1:42015", 42015, "https://127.0.0.1:42015"),
        ("https://int-api.vendor.example", 443, "https://int-api.vendor.example:443"),
        ("https://Upload.Vendor.Example", 8443, "https://upload.vendor.example:8443"),
        ("http://[::1]:8080", 8080, "http://[::1]:8080"),
        ("https://[2001:db8::1]", 443, "https://[2001:db8::1]:443"),
        ("https://h.example:8443", None, "https://h.example:8443"),
        (
            "ref+vault://secret/erelease/ncs#upload_server",
            443,
            "(in Vault) secret/erelease/ncs#upload_server, port 443",
        ),
        (None, 443, ""),
        ("not a url", 443, "not a url"),
        ("https://h.example:99999", 443, "https://h.example:99999"),  # unparsable port: as is
    ],
)
def test_upload_address_names_the_port_once(server: str | None, port: Any, shown: str) -> None:
    spec = {"uploadServer": server, "uploadPort": port}
    assert upload_address(spec) == shown


def _outgoing(name: str, server: str, port: int) -> ConnectionRecord:
    return ConnectionRecord(
        kind="outgoing",
        name=name,
        spec={"authServer": server, "uploadServer": server, "uploadPort": port},
    )


def test_outgoing_table_shows_upload_server_with_its_port() -> None:
    records = [_outgoing("nsc", "https://127.0.0.1:42015", 42015)]
    text = registry_tables(records, Style(colour=False))
    [row] = [line for line in text.splitlines() if line.startswith("nsc")]
    assert row.split()[:3] == ["nsc", "https://127.0.0.1:42015", "https://127.0.0.1:42015"]
    assert "42015:42015" not in text


def test_auth_server_from_vault_is_shown_as_a_reference() -> None:
    record = ConnectionRecord(
        kind="outgoing",
        name="nsc",
        spec={
            "authServer": "ref+vault://secret/erelease/nsc#auth_server",
            "uploadServer": "https://u.example",
            "uploadPort": 443,
        },
        secret_versions={"authServer": 2},
    )
    text = registry_tables([record], Style(colour=False))
    assert "(in Vault) secret/erelease/nsc#auth_server v2" in text
    assert "ref+vault://" not in text


def test_an_untested_change_reads_not_yet_tested_everywhere() -> None:
    untested = CheckResult("incoming/cfnc", "incoming", "cfnc", "untested", "untested", "", 0)
    record = ConnectionRecord(
        kind="incoming", name="cfnc", spec={}, outputs={"clientId": "A" * 16}, last_test=untested
    )
    assert "not yet tested" in registry_tables([record], Style(colour=False))
    info = StackInfo("s", "L", 1, "")
    assert "not yet tested" in state_list(info, [record], None)
    assert "untested" not in state_list(info, [record], None)
    assert record_dict(record)["last_test"] is None
