"""Vault failures and logins as a district admin meets them: through ``erelease plan``/``apply``.

Every failure exits 1 with one ``erelease: error:`` line that names the Vault
address and the secret, and no traceback; a token erelease logged in for is
revoked on the real server once the command has ended, whether it succeeded or
failed; incoming credentials on a KV v1 mount can be created and rotated.
"""

from __future__ import annotations

import os
import secrets
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from erelease.cli import cli
from tests.fixtures.common import CANARY, free_port
from tests.fixtures.openbao import OpenBaoServer


@dataclass
class Workdir:
    path: Path
    bao: OpenBaoServer
    mount: str
    monkeypatch: pytest.MonkeyPatch

    def connection(self, kind: str, name: str, ref: str) -> None:
        if kind == "outgoing":
            text = f"""\
                apiVersion: erelease/v1
                kind: OutgoingConnection
                metadata: {{name: {name}}}
                spec:
                  authServer: https://auth.vendor.example
                  authPath: /oauth/token
                  uploadServer: https://auth.vendor.example
                  uploadPort: 443
                  uploadPath: /upload
                  consumerKey: key
                  consumerSecret: {ref}
                  grantType: client_credentials
                """
        else:
            text = f"""\
                apiVersion: erelease/v1
                kind: IncomingConnection
                metadata: {{name: {name}}}
                spec:
                  credentials: {ref}
                  rotation: 0
                """
        path = self.path / "connections.d" / f"{name}.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")

    def run(self, *args: str, token: str | None = None) -> Result:
        if token is None:
            self.monkeypatch.delenv("BAO_TOKEN", raising=False)
        else:
            self.monkeypatch.setenv("BAO_TOKEN", token)
        return CliRunner().invoke(cli, ["-C", str(self.path), *args])


@pytest.fixture
def workdir(
    tmp_path: Path, openbao: OpenBaoServer, openbao_kv: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workdir]:
    for name in ("BAO_", "VAULT_", "ERELEASE_", "ACTIONS_ID_TOKEN_"):
        for variable in [v for v in os.environ if v.startswith(name)]:
            monkeypatch.delenv(variable)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no ~/.vault-token of the machine
    monkeypatch.setenv("BAO_ADDR", openbao.addr)
    root = tmp_path / "district"
    (root / "connections.d").mkdir(parents=True)
    yield Workdir(root, openbao, openbao_kv, monkeypatch)


def _one_error_line(result: Result, *fragments: str) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("erelease: error: "), result.stderr
    assert "Traceback" not in result.stderr and CANARY not in result.output + result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


Setup = Callable[[Workdir], tuple[str, str | None]]  # -> (reference, token override)


def _missing(w: Workdir) -> tuple[str, str | None]:
    return f"ref+vault://{w.mount}/erelease/missing#k", None


def _no_mount(w: Workdir) -> tuple[str, str | None]:
    return "ref+vault://no-such-mount/erelease/x#k", None


def _version_deleted(w: Workdir) -> tuple[str, str | None]:
    w.bao.kv_put(w.mount, "erelease/del", {"k": CANARY})
    w.bao.kv_put(w.mount, "erelease/del", {"k": CANARY + "2"})
    w.bao.client().secrets.kv.v2.delete_secret_versions("erelease/del", [1], mount_point=w.mount)
    return f"ref+openbao://{w.mount}/erelease/del?version=1#k", None


def _version_destroyed(w: Workdir) -> tuple[str, str | None]:
    w.bao.kv_put(w.mount, "erelease/gone", {"k": CANARY})
    w.bao.client().secrets.kv.v2.destroy_secret_versions("erelease/gone", [1], mount_point=w.mount)
    return f"ref+vault://{w.mount}/erelease/gone#k", None


def _version_absent(w: Workdir) -> tuple[str, str | None]:
    w.bao.kv_put(w.mount, "erelease/one", {"k": CANARY})
    return f"ref+vault://{w.mount}/erelease/one?version=7#k", None


def _invalid_token(w: Workdir) -> tuple[str, str | None]:
    return f"ref+vault://{w.mount}/erelease/x#k", CANARY


def _denied(w: Workdir) -> tuple[str, str | None]:
    w.bao.kv_put(w.mount, "erelease/secret", {"k": CANARY})
    policy = f"cli-deny-{secrets.token_hex(3)}"
    rule = f'path "{w.mount}/data/erelease/other" {{ capabilities = ["read"] }}'
    w.bao.write_policy(policy, rule)
    return f"ref+vault://{w.mount}/erelease/secret#k", w.bao.create_token([policy])


def _v1_key_missing(w: Workdir) -> tuple[str, str | None]:
    w.bao.enable_kv("kv1", 1)
    w.bao.kv_put("kv1", "erelease/cli", {"consumer_secret": CANARY, "user": CANARY})
    return "ref+vault://kv1/erelease/cli#password", None


def _v2_key_missing(w: Workdir) -> tuple[str, str | None]:
    w.bao.kv_put(w.mount, "erelease/keys", {"consumer_secret": CANARY, "user": CANARY})
    w.bao.kv_put(w.mount, "erelease/keys", {"consumer_secret": CANARY, "user": CANARY})
    return f"ref+vault://{w.mount}/erelease/keys#pasword", None


CASES: dict[str, tuple[Setup, tuple[str, ...]]] = {
    "not found": (_missing, ("erelease/missing not found", "bao kv put")),
    "no engine": (_no_mount, ("no secrets engine is mounted at no-such-mount/",)),
    "deleted": (_version_deleted, ("version 1 of secret", "was deleted", "undelete")),
    "destroyed": (_version_destroyed, ("version 1 of secret", "was destroyed")),
    "no such version": (_version_absent, ("version 7", "does not exist", "current version is 1")),
    "invalid token": (_invalid_token, ("token from BAO_TOKEN is invalid or expired",)),
    "denied": (_denied, ("permission denied", "do not grant 'read'", "erelease/secret")),
    "key missing": (_v1_key_missing, ("no key 'password'", "keys present: consumer_secret, user")),
    "key missing v2": (
        _v2_key_missing,
        ("erelease/keys (version 2)", "no key 'pasword'", "keys present: consumer_secret, user"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_plan_exits_1_with_one_sentence(workdir: Workdir, case: str) -> None:
    setup, fragments = CASES[case]
    ref, token = setup(workdir)
    workdir.connection("outgoing", "vendor", ref)
    result = workdir.run("plan", token=token or workdir.bao.root_token)
    _one_error_line(result, f"Vault at {workdir.bao.addr}", *fragments)


def test_a_metadata_only_policy_still_plans(workdir: Workdir) -> None:
    """A token that may read versions but not values plans; the key check waits for test."""
    mount = workdir.mount
    workdir.bao.kv_put(mount, "erelease/meta-only", {"consumer_secret": CANARY})
    policy = f"cli-meta-{secrets.token_hex(3)}"
    rule = f'path "{mount}/metadata/erelease/meta-only" {{ capabilities = ["read"] }}'
    workdir.bao.write_policy(policy, rule)
    token = workdir.bao.create_token([policy])
    for key in ("consumer_secret", "typo"):
        workdir.connection("outgoing", "vendor", f"ref+vault://{mount}/erelease/meta-only#{key}")
        result = workdir.run("plan", "--detailed-exitcode", token=token)
        assert result.exit_code == 2, result.stderr
        assert "1 to create" in result.stdout and CANARY not in result.output
    # With the root token the same typo is caught by the plan.
    result = workdir.run("plan", token=workdir.bao.root_token)
    _one_error_line(result, "no key 'typo'", "keys present: consumer_secret")


def test_plan_against_unreachable_vault(workdir: Workdir) -> None:
    address = f"http://127.0.0.1:{free_port()}"
    workdir.monkeypatch.setenv("BAO_ADDR", address)
    workdir.connection("outgoing", "vendor", f"ref+vault://{workdir.mount}/erelease/x#k")
    result = workdir.run("plan", token=CANARY)
    _one_error_line(result, f"cannot connect to Vault at {address}")


def _live_tokens_with(bao: OpenBaoServer, policy: str) -> int:
    client = bao.client()
    accessors = client.adapter.list("/v1/auth/token/accessors")["data"]["keys"]
    count = 0
    for accessor in accessors:
        info = client.adapter.post("/v1/auth/token/lookup-accessor", json={"accessor": accessor})
        if policy in (info["data"].get("policies") or []):
            count += 1
    return count


@pytest.fixture
def approle(workdir: Workdir) -> Iterator[tuple[str, str]]:
    """An AppRole whose tokens carry a policy of their own, so they can be counted."""
    bao, mount = workdir.bao, f"cli-approle-{secrets.token_hex(3)}"
    policy = f"cli-reader-{secrets.token_hex(3)}"
    bao.write_policy(policy, f'path "{workdir.mount}/*" {{ capabilities = ["read"] }}')
    client = bao.client()
    client.sys.enable_auth_method("approle", path=mount)
    try:
        client.adapter.post(
            f"/v1/auth/{mount}/role/erelease", json={"token_policies": [policy], "token_ttl": "10m"}
        )
        role_id = client.adapter.get(f"/v1/auth/{mount}/role/erelease/role-id")["data"]["role_id"]
        secret_id = client.adapter.post(f"/v1/auth/{mount}/role/erelease/secret-id")["data"][
            "secret_id"
        ]
        workdir.monkeypatch.setenv("VAULT_ROLE_ID", role_id)
        workdir.monkeypatch.setenv("VAULT_SECRET_ID", secret_id)
        workdir.monkeypatch.setenv("ERELEASE_VAULT_AUTH_MOUNT", mount)
        yield mount, policy
    finally:
        client.sys.disable_auth_method(mount)


def test_login_token_is_revoked_when_plan_ends(workdir: Workdir, approle: tuple[str, str]) -> None:
    _mount, policy = approle
    workdir.bao.kv_put(workdir.mount, "erelease/vendor", {"consumer_secret": CANARY})
    workdir.connection(
        "outgoing", "vendor", f"ref+vault://{workdir.mount}/erelease/vendor#consumer_secret"
    )
    ok = workdir.run("plan")  # no BAO_TOKEN: auto finds the AppRole
    assert ok.exit_code == 0, ok.stderr
    assert "1 to create" in ok.stdout
    assert _live_tokens_with(workdir.bao, policy) == 0
    # A failing plan revokes its token too.
    workdir.connection("outgoing", "other", f"ref+vault://{workdir.mount}/erelease/nothing#k")
    failed = workdir.run("plan")
    _one_error_line(failed, "erelease/nothing not found")
    assert _live_tokens_with(workdir.bao, policy) == 0


def test_login_is_really_made(workdir: Workdir, approle: tuple[str, str]) -> None:
    """The counting above can fail: a token from a login lives until someone revokes it."""
    mount, policy = approle
    client = workdir.bao.client()
    env = os.environ
    client.adapter.post(
        f"/v1/auth/{mount}/login",
        json={"role_id": env["VAULT_ROLE_ID"], "secret_id": env["VAULT_SECRET_ID"]},
    )
    assert _live_tokens_with(workdir.bao, policy) == 1


def test_incoming_credentials_on_kv_v1_create_and_rotate(workdir: Workdir) -> None:
    bao = workdir.bao
    bao.enable_kv("kv1", 1)
    path = f"erelease/incoming/cli-{secrets.token_hex(3)}"
    workdir.connection("incoming", "cfnc", f"ref+vault://kv1/{path}")
    token = bao.root_token
    created = workdir.run("apply", "--auto-approve", "--no-test", token=token)
    assert created.exit_code == 0, created.stderr
    first = bao.client().secrets.kv.v1.read_secret(path, mount_point="kv1")["data"]
    assert {"client_id", "client_secret"} <= set(first)
    assert workdir.run("plan", "--detailed-exitcode", token=token).exit_code == 0
    target = workdir.path / "connections.d" / "cfnc.yaml"
    target.write_text(target.read_text().replace("rotation: 0", "rotation: 1"))
    rotated = workdir.run("apply", "--auto-approve", "--no-test", token=token)
    assert rotated.exit_code == 0, rotated.stderr
    second = bao.client().secrets.kv.v1.read_secret(path, mount_point="kv1")["data"]
    assert second["client_id"] == first["client_id"]
    assert second["client_secret"] != first["client_secret"]
    assert workdir.run("plan", "--detailed-exitcode", token=token).exit_code == 0
    for text in (created.output, rotated.output, created.stderr, rotated.stderr):
        assert first["client_secret"] not in text and second["client_secret"] not in text
