"""The Vault policy the README gives erelease is enough for everything it says erelease does.

The HCL is taken from README.md itself, pointed at a fresh mount, and a token
holding only that policy plans, applies (minting incoming credentials), rotates,
reveals and revokes through the real CLI against a real OpenBao.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from erelease.cli import cli
from tests.fixtures.common import CANARY
from tests.fixtures.openbao import OpenBaoServer
from tests.integration.engine.conftest import incoming_yaml, outgoing_yaml

ROOT = Path(__file__).resolve().parents[3]


def readme_policy(mount: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"```hcl\n(.*?)```", readme, re.DOTALL)
    assert found is not None, "README.md has no ```hcl policy block"
    return found.group(1).replace('path "secret/', f'path "{mount}/')


def test_the_readme_policy_plans_applies_rotates_and_revokes(
    tmp_path: Path, openbao: OpenBaoServer, openbao_kv: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in [v for v in os.environ if v.startswith(("BAO_", "VAULT_", "ERELEASE_"))]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("BAO_ADDR", openbao.addr)
    mount = openbao_kv
    openbao.kv_put(mount, "erelease/vendor", {"consumer_secret": CANARY, "password": CANARY})
    policy = f"readme-{secrets.token_hex(3)}"
    openbao.write_policy(policy, readme_policy(mount))
    monkeypatch.setenv("BAO_TOKEN", openbao.create_token([policy]))
    config = tmp_path / "district"
    (config / "connections.d").mkdir(parents=True)

    def write(name: str, text: str) -> None:
        (config / "connections.d" / f"{name}.yaml").write_text(text, encoding="utf-8")

    def run(*args: str) -> Result:
        result = CliRunner().invoke(cli, ["-C", str(config), *args])
        assert result.exit_code == 0, (args, result.stderr)
        assert CANARY not in result.output
        return result

    write("vendor", outgoing_yaml("vendor", mount))
    write("cfnc", incoming_yaml("cfnc", mount, rotation=1))
    run("plan")
    run("apply", "--auto-approve", "--no-test")
    first = json.loads(run("show", "cfnc", "--reveal", "--format", "json").stdout)
    write("cfnc", incoming_yaml("cfnc", mount, rotation=2))
    run("apply", "--auto-approve", "--no-test")
    run("apply", "--auto-approve", "--no-test", "--rotate", "cfnc")
    last = json.loads(run("show", "cfnc", "--reveal", "--format", "json").stdout)
    assert last["outputs"]["clientSecret"] != first["outputs"]["clientSecret"]
    (config / "connections.d" / "cfnc.yaml").unlink()
    run("apply", "--auto-approve", "--no-test", "--allow-delete")
    assert openbao.client().secrets.kv.v2.list_secrets("erelease", mount_point=mount)["data"][
        "keys"
    ] == ["vendor"]
