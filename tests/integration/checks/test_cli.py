"""``erelease test`` end to end: OpenBao, a SQLite registry, the vendor simulator.

What a CI pipeline relies on (SPEC §3, §5.5): the JSON document's exact shape,
exit 3 when any test failed, NAME selection, results stored in the registry,
and no secret or access token in anything printed or stored.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from erelease.cli import cli
from erelease.devtools.vendorsim import VendorSim
from tests.fixtures.common import CANARY
from tests.fixtures.openbao import OpenBaoEnv, OpenBaoServer
from tests.fixtures.vendor import VENDOR_USERNAME, new_client

#: RFC 6749 §2.3.1: these must survive form-urlencoding inside HTTP Basic.
AWKWARD_SECRET = CANARY + ":+% x"
RESULT_KEYS = ["address", "kind", "name", "status", "reason", "message", "duration_ms"]


class District:
    def __init__(self, root: Path, mount: str, bao: OpenBaoServer, sim: VendorSim) -> None:
        self.root, self.mount, self.bao, self.sim = root, mount, bao, sim
        (root / "connections.d").mkdir(parents=True)
        (root / "erelease.yaml").write_text(
            "stack: district-7\n"
            "incoming:\n  baseUrl: http://127.0.0.1:9/campus\n"
            "tests:\n  timeout: 5s\n  retries: 0\n",
            encoding="utf-8",
        )

    def outgoing(self, name: str, *, consumer_key: str) -> None:
        text = f"""\
            apiVersion: erelease/v1
            kind: OutgoingConnection
            metadata: {{name: {name}}}
            spec:
              authServer: {self.sim.url}
              authPath: /send-library-api/v1/oauth/token
              uploadServer: {self.sim.url}
              uploadPort: {self.sim.port}
              uploadPath: /upload
              consumerKey: "{consumer_key}"
              consumerSecret: ref+vault://{self.mount}/erelease/{name}#consumer_secret
              username: {VENDOR_USERNAME}
              password: ref+vault://{self.mount}/erelease/{name}#password
              allowInsecureHttp: true
            """
        path = self.root / "connections.d" / f"{name}.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["-C", str(self.root), *args])


@pytest.fixture
def district(
    tmp_path: Path,
    openbao_env: OpenBaoEnv,
    openbao: OpenBaoServer,
    openbao_kv: str,
    vendor: VendorSim,
) -> District:
    d = District(tmp_path / "district-7", openbao_kv, openbao, vendor)
    good = new_client(
        vendor, client_id="key with:colon+plus", client_secret=AWKWARD_SECRET, password=CANARY
    )
    openbao.kv_put(
        openbao_kv, "erelease/good", {"consumer_secret": good.client_secret, "password": CANARY}
    )
    d.outgoing("good", consumer_key=good.client_id)
    locked = new_client(vendor)
    openbao.kv_put(openbao_kv, "erelease/locked", {"consumer_secret": CANARY, "password": "not-it"})
    d.outgoing("locked", consumer_key=locked.client_id)
    applied = d.run("apply", "--auto-approve", "--no-test")
    assert applied.exit_code == 0, applied.output
    return d


def test_json_document_and_exit_3(district: District) -> None:
    result = district.run("test", "--format", "json")
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)  # nothing but the document on stdout
    assert list(document) == ["format_version", "results", "summary"]
    assert document["format_version"] == "1"
    assert document["summary"] == {"valid": 1, "failed": 1}
    rows = {row["name"]: row for row in document["results"]}
    for row in document["results"]:
        assert list(row) == RESULT_KEYS
        assert isinstance(row["duration_ms"], int)
    assert rows["good"]["address"] == "outgoing/good"
    assert rows["good"]["kind"] == "outgoing"
    assert (rows["good"]["status"], rows["good"]["reason"]) == ("valid", "ok")
    assert (rows["locked"]["status"], rows["locked"]["reason"]) == ("failed", "invalid_grant")
    assert result.stderr.strip().splitlines() == [
        "erelease: error: 1 of 2 connectivity test(s) failed"
    ]


def test_names_select_what_is_tested(district: District) -> None:
    only = district.run("test", "good", "--format", "json", "--timeout", "2s")
    assert only.exit_code == 0, only.output
    assert [r["address"] for r in json.loads(only.stdout)["results"]] == ["outgoing/good"]
    by_address = district.run("test", "outgoing/locked", "--concurrency", "1")
    assert by_address.exit_code == 3
    assert "outgoing/locked" in by_address.stdout and "outgoing/good" not in by_address.stdout
    unknown = district.run("test", "nosuch")
    assert unknown.exit_code == 64
    # In connections.d/ but not applied yet: tests check what is applied, and say so.
    district.outgoing("newcomer", consumer_key="k")
    pending = district.run("test", "newcomer")
    assert pending.exit_code == 64
    assert "no connection named 'newcomer' applied in this stack" in pending.stderr
    assert "run 'erelease apply' first" in pending.stderr
    assert "nosuch" in unknown.stderr


def test_results_are_stored_and_shown(district: District) -> None:
    district.run("test")
    shown = json.loads(district.run("show", "locked", "--format", "json").stdout)
    assert shown["last_test"]["reason"] == "invalid_grant"
    assert "user name and password" in shown["last_test"]["message"]


def test_a_secret_gone_from_vault_fails_only_its_own_test(district: District) -> None:
    district.bao.kv_put(district.mount, "erelease/locked", {"consumer_secret": CANARY})
    document = json.loads(district.run("test", "--format", "json").stdout)
    reasons = {row["name"]: row["reason"] for row in document["results"]}
    assert reasons == {"good": "ok", "locked": "secret_unavailable"}


def test_no_secret_or_token_in_any_output(district: District) -> None:
    texts: list[str] = []
    for args in (("-vv", "test"), ("test", "--format", "json"), ("show", "good")):
        result = district.run(*args)
        texts += [result.stdout, result.stderr]
    tokens = district.sim.issued_tokens()
    assert tokens  # the good connection really got tokens
    blobs = [p.read_bytes() for p in (district.root / ".erelease").glob("state.db*")]
    for value in [CANARY, AWKWARD_SECRET, *tokens]:
        for text in texts:
            assert value not in text
        for blob in blobs:
            assert value.encode() not in blob
