"""A planted canary secret never shows up in an exception, a log record or the output.

The canary is stored as secret values, used as a token, a secret ID and an id
token, and echoed by a fake Vault in every error body it sends; then every
error path and the resolver are exercised and everything we could print is
scanned.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

import pytest

from erelease.errors import SecretsError
from erelease.model import Secret, SecretRef
from erelease.settings import VaultAuthSettings, VaultSettings
from tests.fixtures.common import CANARY, free_port
from tests.fixtures.openbao import OpenBaoServer

from .conftest import Answer, FakeHTTP, Seen, VaultFactory
from .fakevault import KV2_MOUNT


def _echo_canary(seen: Seen) -> Answer:
    """A hostile Vault: every answer carries the canary, in the body and a header."""
    path = seen.path.split("?", 1)[0]
    body = {"errors": [f"boom {CANARY}"], "data": {"leak": CANARY}}
    # Vault's answers also echo it in a header; the OIDC endpoint (httpx, whose
    # transport traces response headers at DEBUG) gets it in its body only.
    headers = {} if path == "/oidc" else {"X-Debug": CANARY}
    if path.startswith("/v1/sys/internal/ui/mounts/"):
        return Answer(200, {**KV2_MOUNT, "warnings": [CANARY]}, headers)
    if path == "/v1/sys/health":
        return Answer(500, body, headers)
    if path.startswith("/v1/ok/") or "/data/ok" in path:
        return Answer(200, {"data": {"data": {"other": CANARY}, "metadata": {"version": 1}}})
    status = {"forbidden": 403, "missing": 404, "busy": 429, "broken": 500, "bad": 400, "oidc": 500}
    for word, code in status.items():
        if word in path:
            return Answer(code, body, headers)
    return Answer(403, body, headers)


def test_canary_never_leaks(
    openbao: OpenBaoServer,
    openbao_kv: str,
    make_vault: VaultFactory,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, hvac, urllib3
    seen: list[str] = []
    errors = 0

    def expect_error(call: Callable[[], object]) -> None:
        nonlocal errors
        with pytest.raises(SecretsError) as info:
            call()
        errors += 1
        exc: BaseException | None = info.value
        seen.append("".join(traceback.format_exception(info.value)))
        while exc is not None:
            seen.extend([str(exc), repr(exc), repr(exc.args)])
            exc = exc.__cause__ or exc.__context__

    # -- a real server with the canary stored as values ------------------------------
    for version_value in (CANARY, CANARY + "-2", CANARY + "-3"):
        openbao.kv_put(openbao_kv, "canary/app", {"password": version_value, "user": CANARY})
    client = openbao.client()
    client.secrets.kv.v2.delete_secret_versions("canary/app", [1], mount_point=openbao_kv)
    client.secrets.kv.v2.destroy_secret_versions("canary/app", [2], mount_point=openbao_kv)
    openbao.enable_kv("kv1", 1)
    openbao.kv_put("kv1", "canary/app", {"password": CANARY})
    vault = make_vault()
    ref = SecretRef(openbao_kv, "canary/app", "password")
    values = vault.resolve([ref, SecretRef("kv1", "canary/app", "password")])
    seen += [repr(values), str(values), repr(vault), repr(vault.versions([ref]))]
    seen += [repr(vault.read_all(ref)), repr(vault.metadata(ref))]
    assert values[ref].reveal() == CANARY + "-3"

    expect_error(lambda: vault.resolve([SecretRef(openbao_kv, "canary/app", "nokey")]))
    expect_error(lambda: vault.resolve([SecretRef("kv1", "canary/app", "nokey")]))
    expect_error(lambda: vault.resolve([SecretRef(openbao_kv, "canary/app", "password", 1)]))
    expect_error(lambda: vault.versions([SecretRef(openbao_kv, "canary/app", "password", 2)]))
    expect_error(lambda: vault.resolve([SecretRef(openbao_kv, "canary/app", "password", 2)]))
    expect_error(
        lambda: vault.write_credentials(
            SecretRef(openbao_kv, "canary/app"),
            data={"client_secret": Secret(CANARY)},
            cas=1,
            custom_metadata={"managed-by": "erelease"},
        )
    )
    openbao.write_policy("canary-none", 'path "nothing/*" { capabilities = ["read"] }')
    denied = make_vault(environ={"BAO_TOKEN": openbao.create_token(["canary-none"])})
    expect_error(lambda: denied.resolve([ref]))
    expect_error(lambda: make_vault(environ={"BAO_TOKEN": CANARY}).resolve([ref]))
    # a token that cannot be a header value: requests quotes it in its own error
    expect_error(lambda: make_vault(environ={"BAO_TOKEN": f"{CANARY}\nx"}).resolve([ref]))

    client.sys.enable_auth_method("approle", path="canary-approle")
    try:
        client.adapter.post("/v1/auth/canary-approle/role/r", json={"token_ttl": "1m"})
        role_id = client.adapter.get("/v1/auth/canary-approle/role/r/role-id")["data"]["role_id"]
        settings = VaultSettings(
            address=openbao.addr, auth=VaultAuthSettings(mount="canary-approle")
        )
        env = {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": CANARY}
        expect_error(lambda: make_vault(settings, environ=env).resolve([ref]))
    finally:
        client.sys.disable_auth_method("canary-approle")
    env = {"CI_ID_TOKEN": CANARY}
    settings = VaultSettings(address=openbao.addr, auth=VaultAuthSettings(token_env="CI_ID_TOKEN"))
    expect_error(lambda: make_vault(settings, environ=env).resolve([ref]))

    unreachable = VaultSettings(address=f"http://127.0.0.1:{free_port()}")
    expect_error(lambda: make_vault(unreachable, environ={"BAO_TOKEN": CANARY}).resolve([ref]))

    # -- a hostile Vault echoing the canary in every answer ------------------------
    with FakeHTTP(_echo_canary) as fake:
        hostile = make_vault(
            VaultSettings(address=fake.url, timeout=2), environ={"BAO_TOKEN": CANARY}
        )
        for path in ("forbidden", "missing", "busy", "broken"):
            expect_error(lambda path=path: hostile.resolve([SecretRef("secret", path, "k")]))
        expect_error(lambda: hostile.resolve([SecretRef("secret", "ok", "k")]))
        expect_error(
            lambda: hostile.write_credentials(
                SecretRef("secret", "bad"), data={"k": Secret(CANARY)}, cas=0, custom_metadata={}
            )
        )
        expect_error(lambda: hostile.versions([SecretRef("secret", "missing", "k")]))
        env = {
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{fake.url}/oidc?x=1",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": CANARY,
        }
        expect_error(lambda: make_vault(environ=env).resolve([ref]))
        env = {"VAULT_ROLE_ID": CANARY, "VAULT_SECRET_ID": CANARY}
        expect_error(
            lambda: make_vault(VaultSettings(address=fake.url), environ=env).resolve([ref])
        )

    assert errors == 21
    out, err = capsys.readouterr()
    logged = [caplog.text] + [r.getMessage() for r in caplog.records]
    logged += [str(r.args) for r in caplog.records] + [r.exc_text or "" for r in caplog.records]
    for where, text in [
        *(("seen", t) for t in seen),
        *(("log", t) for t in logged),
        ("stdout", out),
        ("stderr", err),
    ]:
        assert CANARY not in text, (where, text)
    assert any(r.name == "erelease.secrets" for r in caplog.records)
