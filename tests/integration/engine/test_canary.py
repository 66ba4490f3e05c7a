"""A canary secret planted in Vault must never appear in anything erelease writes."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.common import CANARY
from tests.integration.engine.conftest import District, incoming_yaml, outgoing_yaml


def test_canary_never_leaks(district: District, tmp_path: Path) -> None:
    district.put_vendor_secret("parchment", password=CANARY, consumer_secret=CANARY + "-cs")
    district.write(
        "parchment",
        outgoing_yaml("parchment", district.mount, server="https://127.0.0.1:9", port=9),
    )
    district.write("cfnc", incoming_yaml("cfnc", district.mount))
    plan_file = tmp_path / "plan.json"
    outputs: list[str] = []
    runs = [
        ("validate",),
        ("plan",),
        ("plan", "--format", "json"),
        ("plan", "--format", "markdown"),
        ("plan", "--out", str(plan_file)),
        ("apply", str(plan_file)),  # runs the tests too: they fail (nothing listens), exit 3
        ("show",),
        ("show", "--format", "json"),
        ("show", "parchment"),
        ("show", "parchment", "--format", "json"),
        ("test",),
        ("test", "--format", "json"),
        ("state", "list", "--format", "json"),
        ("state", "history", "--format", "json"),
    ]
    for args in runs:
        result = district.run("-v", *args) if args[0] != "validate" else district.run(*args)
        assert result.exit_code in (0, 3), (args, result.output, result.stderr)
        assert "Traceback" not in result.stderr
        outputs += [result.stdout, result.stderr]
    # The rotate path and a saved rotation plan too.
    result = district.run("plan", "--rotate", "cfnc", "--format", "json")
    outputs += [result.stdout, result.stderr]
    secret = district.vault_data("erelease/incoming/cfnc")
    assert secret is not None
    for text in outputs:
        assert CANARY not in text
        assert secret["client_secret"] not in text
    blobs = [plan_file.read_bytes(), district.state_file.read_bytes()]
    for sidecar in district.state_file.parent.glob("state.db*"):
        blobs.append(sidecar.read_bytes())
    for blob in blobs:
        assert CANARY.encode() not in blob
        assert secret["client_secret"].encode() not in blob
    # --reveal is the one, explicit way to see the minted client secret.
    revealed = district.run("show", "cfnc", "--reveal")
    assert secret["client_secret"] in revealed.stdout
