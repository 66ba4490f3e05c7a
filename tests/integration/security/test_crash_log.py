"""An unexpected bug mid-apply (exit 70) writes a crash log that holds no secret.

The seams are our own: the Vault client's credential write and its resolver.
Each is wrapped to do its real work and then fail with an exception whose text
quotes the repr of every argument and result, as a careless ``raise`` would.
The traceback goes to the log file; nothing in it, nor on the terminal, may
hold the minted client secret, the vendor's secrets or the Vault token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from erelease.cli import cli
from erelease.secrets.vault import Vault
from tests.fixtures.common import CANARY
from tests.integration.security.conftest import SecureDistrict, incoming, outgoing


def _failing_after(real: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        got = real(*args, **kwargs)
        raise RuntimeError(f"simulated bug: args={args[1:]!r} kwargs={kwargs!r} got={got!r}")

    return wrapper


@pytest.mark.parametrize("seam", ["write_credentials", "resolve"])
def test_a_crash_log_holds_no_secret(
    secure_district: SecureDistrict,
    hostile_vendor: str,
    monkeypatch: pytest.MonkeyPatch,
    seam: str,
) -> None:
    district = secure_district
    district.write("cfnc", incoming("cfnc", district.mount))
    district.write("vendor", outgoing("vendor", district.mount, hostile_vendor, "/echo"))
    for name, value in district.environ().items():
        monkeypatch.setenv(name, value)
    if seam == "resolve":  # the vendor's secrets, read for a connectivity test
        assert district.run("apply", "--auto-approve", "--no-test").code == 0
    real = getattr(Vault, seam)
    monkeypatch.setattr(Vault, seam, _failing_after(real))
    command = ["apply", "--auto-approve"] if seam == "write_credentials" else ["test"]
    result = CliRunner().invoke(cli, ["-v", "-C", str(district.path), *command])
    assert result.exit_code == 70, result.output + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    [log] = district.crash_dir.glob("crash-*.log")
    text = log.read_text(encoding="utf-8")
    assert "simulated bug" in text and "Secret('***')" in text  # the reprs are in it
    secrets = [CANARY, district.token]
    if seam == "write_credentials":
        # written to Vault before the bug: the next apply converges on them
        secrets.append(district.client_secret("cfnc"))
    for value in secrets:
        assert value not in text
        assert value not in result.stdout + result.stderr
    if seam == "write_credentials":
        monkeypatch.setattr(Vault, seam, real)
        again = district.run("apply", "--auto-approve", "--no-test")
        assert again.code == 0, again.stderr
        assert district.client_secret("cfnc") == secrets[-1]
