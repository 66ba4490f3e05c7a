"""The command line as CI and an operator see it, through the real executable.

SPEC §3: ``-v`` gives logs on stderr while ``--format json`` keeps stdout a
single JSON document (``| jq`` in a pipeline), and Ctrl-C exits 130. An
interrupt that lands after apply committed must say that the changes *were*
applied, or the operator believes nothing happened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from erelease.devtools.vendorsim import VendorSim
from tests.fixtures.common import CANARY
from tests.fixtures.openbao import OpenBaoEnv, OpenBaoServer
from tests.fixtures.vendor import new_client


class Site:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "erelease", "-C", str(self.root), *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # SIGINT reaches only the child
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = self.popen(*args)
        out, err = proc.communicate(timeout=120)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _site(root: Path, mount: str, sim: VendorSim, client_id: str, bao: OpenBaoEnv) -> Site:
    (root / "connections.d").mkdir(parents=True)
    (root / "erelease.yaml").write_text(
        "stack: cli-contract\ntests:\n  timeout: 120s\n  retries: 0\n", encoding="utf-8"
    )
    (root / "connections.d" / "vendor.yaml").write_text(
        textwrap.dedent(
            f"""\
            apiVersion: erelease/v1
            kind: OutgoingConnection
            metadata: {{name: vendor}}
            spec:
              authServer: {sim.url}
              authPath: /send-library-api/v1/oauth/token
              uploadServer: {sim.url}
              uploadPort: {sim.port}
              uploadPath: /upload
              consumerKey: {client_id}
              consumerSecret: ref+vault://{mount}/erelease/vendor#consumer_secret
              grantType: client_credentials
              allowInsecureHttp: true
            """
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR",)}
    env.update(bao.environ)
    return Site(root, env)


@pytest.fixture
def fast_site(
    tmp_path: Path,
    openbao_env: OpenBaoEnv,
    openbao: OpenBaoServer,
    openbao_kv: str,
    vendor: VendorSim,
) -> Site:
    client = new_client(vendor, password=None, username=None)
    openbao.kv_put(openbao_kv, "erelease/vendor", {"consumer_secret": CANARY})
    return _site(tmp_path / "fast", openbao_kv, vendor, client.client_id, openbao_env)


def test_verbose_logs_go_to_stderr_and_json_stays_alone_on_stdout(fast_site: Site) -> None:
    plan = fast_site.run("-v", "plan", "--format", "json")
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["summary"]["create"] == 1
    assert "INFO: stack cli-contract" in plan.stderr
    assert "planned stack cli-contract against serial 0" in plan.stderr

    apply = fast_site.run("-v", "apply", "--auto-approve", "--format", "json")
    assert apply.returncode == 0, apply.stderr
    document = json.loads(apply.stdout)
    assert document["format_version"] == "1" and document["applied"] is True
    assert document["serial"] == 1 and document["results"][0]["status"] == "valid"
    assert "applied; testing 1 changed connection(s)" in apply.stderr

    test = fast_site.run("-v", "test", "--format", "json", "--timeout", "500ms")
    assert test.returncode == 0, test.stderr
    assert json.loads(test.stdout)["summary"] == {"valid": 1, "failed": 0}
    assert "testing all 1 applied connection(s)" in test.stderr
    for proc in (plan, apply, test):
        assert CANARY not in proc.stdout + proc.stderr
        assert "\x1b[" not in proc.stdout + proc.stderr  # not a TTY: no colour


@pytest.fixture
def slow_site(
    tmp_path: Path,
    openbao_env: OpenBaoEnv,
    openbao: OpenBaoServer,
    openbao_kv: str,
    vendor: VendorSim,
) -> tuple[Site, VendorSim, str]:
    client = new_client(vendor, "slow", delay=60.0, password=None, username=None)
    openbao.kv_put(openbao_kv, "erelease/vendor", {"consumer_secret": CANARY})
    site = _site(tmp_path / "slow", openbao_kv, vendor, client.client_id, openbao_env)
    return site, vendor, client.client_id


def _interrupt_once_the_vendor_is_asked(
    proc: subprocess.Popen[str], sim: VendorSim, client_id: str
) -> tuple[str, str]:
    deadline = time.monotonic() + 60
    while sim.stats(client_id).in_flight == 0:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the vendor was never asked"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=60)


def test_ctrl_c_during_the_tests_after_apply_says_the_changes_were_applied(
    slow_site: tuple[Site, VendorSim, str],
) -> None:
    site, sim, client_id = slow_site
    proc = site.popen("apply", "--auto-approve")
    out, err = _interrupt_once_the_vendor_is_asked(proc, sim, client_id)
    assert proc.returncode == 130, err
    assert "the changes were applied" in err and "erelease test" in err
    assert "Traceback" not in out + err
    history = site.run("state", "history", "--format", "json")
    assert [entry["serial"] for entry in json.loads(history.stdout)] == [1]


def test_ctrl_c_during_test_exits_130(slow_site: tuple[Site, VendorSim, str]) -> None:
    site, sim, client_id = slow_site
    assert site.run("apply", "--auto-approve", "--no-test").returncode == 0
    proc = site.popen("test", "--format", "json")
    out, err = _interrupt_once_the_vendor_is_asked(proc, sim, client_id)
    assert proc.returncode == 130, err
    assert out == "" and "interrupted" in err and "Traceback" not in err
