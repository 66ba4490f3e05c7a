"""Every way a district authenticates, against a real OpenBao: token, file, AppRole, JWT, k8s."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from erelease.errors import SecretsError
from erelease.model import SecretRef
from erelease.secrets import Vault
from erelease.settings import VaultAuthSettings, VaultSettings
from tests.fixtures.openbao import OpenBaoServer

from .conftest import Answer, FakeHTTP, Seen

MOUNT = "authkv"
POLICY = f"""
path "{MOUNT}/data/ci/*" {{ capabilities = ["read"] }}
path "{MOUNT}/metadata/ci/*" {{ capabilities = ["read"] }}
"""
REF = SecretRef(MOUNT, "ci/app", "password")
ROOT_ONLY = SecretRef(MOUNT, "root-only/app", "password")
AUDIENCE = "https://vault.district-42.example"
SA_CLAIMS = {
    "iss": "kubernetes/serviceaccount",
    "sub": "system:serviceaccount:erelease:deployer",
    "kubernetes.io/serviceaccount/namespace": "erelease",
    "kubernetes.io/serviceaccount/service-account.name": "deployer",
    "kubernetes.io/serviceaccount/service-account.uid": "uid-1234",
}


def _token_review(seen: Seen) -> Answer:
    user = {"username": "system:serviceaccount:erelease:deployer", "uid": "uid-1234"}
    return Answer(201, {"kind": "TokenReview", "status": {"authenticated": True, "user": user}})


@dataclass
class AuthSetup:
    server: OpenBaoServer
    role_id: str
    secret_id: str
    key: rsa.RSAPrivateKey

    def id_token(self, *, audience: str = AUDIENCE, key: rsa.RSAPrivateKey | None = None) -> str:
        now = int(time.time())
        claims = {"sub": "repo:district-42/connections:ref:refs/heads/main", "aud": audience}
        claims |= {"iss": "https://token.actions.example", "iat": now, "exp": now + 300}
        return jwt.encode(claims, key or self.key, algorithm="RS256")

    def accessors(self) -> set[str]:
        listed = self.server.client().adapter.list("/v1/auth/token/accessors")
        return set(listed["data"]["keys"])

    def environ(self, **extra: str) -> dict[str, str]:
        return {"BAO_ADDR": self.server.addr, **extra}


@pytest.fixture(scope="module")
def auth(openbao: OpenBaoServer) -> Iterator[AuthSetup]:
    client = openbao.client()
    openbao.enable_kv(MOUNT, 2)
    openbao.kv_put(MOUNT, "ci/app", {"password": "from-ci"})
    openbao.kv_put(MOUNT, "root-only/app", {"password": "root"})
    openbao.write_policy("erelease-ci", POLICY)
    enabled = client.sys.list_auth_methods()["data"]
    ours = []  # other modules may share the server: enable (and later remove) only what is missing
    for method, path in (("approle", "approle"), ("jwt", "jwt"), ("kubernetes", "kubernetes")):
        if f"{path}/" not in enabled:
            client.sys.enable_auth_method(method, path=path)
            ours.append(path)
    client.sys.enable_auth_method("approle", path="ci-approle")
    ours.append("ci-approle")
    for mount in ("approle", "ci-approle"):
        client.adapter.post(
            f"/v1/auth/{mount}/role/erelease",
            json={"token_policies": ["erelease-ci"], "token_ttl": "10m"},
        )
    role_id = client.adapter.get("/v1/auth/approle/role/erelease/role-id")["data"]["role_id"]
    secret_id = client.adapter.post("/v1/auth/approle/role/erelease/secret-id")["data"]["secret_id"]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    client.adapter.post("/v1/auth/jwt/config", json={"jwt_validation_pubkeys": [pem.decode()]})
    client.adapter.post(
        "/v1/auth/jwt/role/erelease-ci",
        json={
            "role_type": "jwt",
            "bound_audiences": [AUDIENCE],
            "user_claim": "sub",
            "token_policies": ["erelease-ci"],
            "token_ttl": "10m",
        },
    )
    with FakeHTTP(_token_review) as kube:
        client.adapter.post(
            "/v1/auth/kubernetes/config",
            json={
                "kubernetes_host": kube.url,
                "disable_local_ca_jwt": True,
                "kubernetes_ca_cert": trustme.CA().cert_pem.bytes().decode(),
                "token_reviewer_jwt": "reviewer",
            },
        )
        client.adapter.post(
            "/v1/auth/kubernetes/role/deployer",
            json={
                "bound_service_account_names": ["deployer"],
                "bound_service_account_namespaces": ["erelease"],
                "token_policies": ["erelease-ci"],
                "token_ttl": "10m",
            },
        )
        try:
            yield AuthSetup(openbao, role_id, secret_id, key)
        finally:
            for path in ours:
                client.sys.disable_auth_method(path)
            openbao.disable(MOUNT)


def _vault(
    server: OpenBaoServer, environ: dict[str, str], *, path: Path | None = None, **auth: str
) -> Vault:
    settings = VaultSettings(address=server.addr, timeout=5, auth=VaultAuthSettings(**auth))
    kwargs = {"kubernetes_token_path": path} if path is not None else {}
    return Vault(settings, environ=environ, **kwargs)


def _assert_login_token(auth: AuthSetup, vault: Vault) -> None:
    """The session logged in (one new token) and revokes it when it closes."""
    before = auth.accessors()
    assert vault.resolve([REF])[REF].reveal() == "from-ci"
    with pytest.raises(SecretsError, match="permission denied"):
        vault.resolve([ROOT_ONLY])  # a login token, not the root token
    created = auth.accessors() - before
    assert len(created) == 1
    vault.close()
    assert not created & auth.accessors()


def test_bao_token_wins_over_vault_token(auth: AuthSetup) -> None:
    root = auth.server.root_token
    with _vault(auth.server, auth.environ(BAO_TOKEN=root, VAULT_TOKEN="bogus")) as vault:
        assert vault.resolve([ROOT_ONLY])[ROOT_ONLY].reveal() == "root"
    with (
        _vault(auth.server, auth.environ(BAO_TOKEN="bogus", VAULT_TOKEN=root)) as vault,
        pytest.raises(SecretsError, match="token from BAO_TOKEN is invalid or expired"),
    ):
        vault.resolve([REF])


def test_user_token_is_never_revoked(auth: AuthSetup) -> None:
    token = auth.server.create_token(["erelease-ci"])
    with _vault(auth.server, auth.environ(VAULT_TOKEN=token)) as vault:
        assert vault.resolve([REF])[REF].reveal() == "from-ci"
    assert auth.server.token_exists(token)


def test_token_file(auth: AuthSetup, tmp_path: Path) -> None:
    token = auth.server.create_token(["erelease-ci"])
    (tmp_path / ".vault-token").write_text(token + "\n")
    with _vault(auth.server, auth.environ(HOME=str(tmp_path))) as vault:
        assert vault.resolve([REF])[REF].reveal() == "from-ci"
    assert auth.server.token_exists(token)
    with _vault(auth.server, auth.environ(HOME=str(tmp_path)), method="token") as vault:
        assert vault.resolve([REF])[REF].reveal() == "from-ci"


def test_approle_login_and_revoke(auth: AuthSetup) -> None:
    env = auth.environ(VAULT_ROLE_ID=auth.role_id, VAULT_SECRET_ID=auth.secret_id)
    _assert_login_token(auth, _vault(auth.server, env))
    env = auth.environ(BAO_ROLE_ID=auth.role_id, BAO_SECRET_ID=auth.secret_id)
    _assert_login_token(auth, _vault(auth.server, env, method="approle"))


def test_approle_mount_setting(auth: AuthSetup) -> None:
    client = auth.server.client()
    role_id = client.adapter.get("/v1/auth/ci-approle/role/erelease/role-id")["data"]["role_id"]
    secret_id = client.adapter.post("/v1/auth/ci-approle/role/erelease/secret-id")["data"][
        "secret_id"
    ]
    env = auth.environ(VAULT_ROLE_ID=role_id, VAULT_SECRET_ID=secret_id)
    _assert_login_token(auth, _vault(auth.server, env, mount="ci-approle"))


def test_approle_rejected(auth: AuthSetup) -> None:
    env = auth.environ(VAULT_ROLE_ID=auth.role_id, VAULT_SECRET_ID="wrong")
    with _vault(auth.server, env) as vault, pytest.raises(SecretsError) as info:
        vault.resolve([REF])
    assert str(info.value).startswith(
        f"AppRole login (auth/approle) to Vault at {auth.server.addr} was rejected"
    )
    assert "VAULT_SECRET_ID" in str(info.value)


def test_jwt_from_named_variable(auth: AuthSetup) -> None:
    env = auth.environ(CI_VAULT_ID_TOKEN=auth.id_token())
    vault = _vault(auth.server, env, token_env="CI_VAULT_ID_TOKEN", role="erelease-ci")
    _assert_login_token(auth, vault)


def test_jwt_from_github_actions(auth: AuthSetup) -> None:
    def oidc(seen: Seen) -> Answer:
        if seen.headers.get("Authorization") != "bearer gh-request-token":
            return Answer(401, {"message": "bad credentials"})
        audience = parse_qs(urlsplit(seen.path).query)["audience"][0]
        return Answer(200, {"value": auth.id_token(audience=audience)})

    with FakeHTTP(oidc) as github:
        env = auth.environ(
            ACTIONS_ID_TOKEN_REQUEST_URL=f"{github.url}/token?api-version=2.0",
            ACTIONS_ID_TOKEN_REQUEST_TOKEN="gh-request-token",
        )
        vault = _vault(auth.server, env, role="erelease-ci", audience=AUDIENCE)
        _assert_login_token(auth, vault)
        query = parse_qs(urlsplit(github.seen[0].path).query)
        assert query == {"api-version": ["2.0"], "audience": [AUDIENCE]}
        env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "wrong"
        with (
            _vault(auth.server, env, role="erelease-ci") as vault,
            pytest.raises(SecretsError, match="id-token: write"),
        ):
            vault.resolve([REF])


def test_jwt_rejected(auth: AuthSetup) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for token in (auth.id_token(key=other), auth.id_token(audience="someone-else")):
        env = auth.environ(CI_VAULT_ID_TOKEN=token)
        with (
            _vault(auth.server, env, token_env="CI_VAULT_ID_TOKEN", role="erelease-ci") as vault,
            pytest.raises(SecretsError, match=r"JWT login \(auth/jwt\) to .* was rejected"),
        ):
            vault.resolve([REF])


def test_kubernetes_service_account(auth: AuthSetup, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(jwt.encode(SA_CLAIMS, auth.key, algorithm="RS256"))
    _assert_login_token(auth, _vault(auth.server, auth.environ(), path=token_file, role="deployer"))
    vault = _vault(auth.server, auth.environ(), path=token_file, method="kubernetes", role="nobody")
    with vault, pytest.raises(SecretsError, match=r"Kubernetes login \(auth/kubernetes\)"):
        vault.resolve([REF])
    vault = _vault(auth.server, auth.environ(), path=token_file, method="kubernetes")
    with vault, pytest.raises(SecretsError, match=r"set vault\.auth\.role"):
        vault.resolve([REF])


def test_explicit_method_wins(auth: AuthSetup, tmp_path: Path) -> None:
    env = auth.environ(
        BAO_TOKEN=auth.server.root_token,
        VAULT_ROLE_ID=auth.role_id,
        VAULT_SECRET_ID=auth.secret_id,
    )
    _assert_login_token(auth, _vault(auth.server, env, method="approle"))
    before = auth.accessors()
    with _vault(auth.server, env) as vault:  # auto: the token env comes first
        assert vault.resolve([ROOT_ONLY])[ROOT_ONLY].reveal() == "root"
    assert auth.accessors() == before


def test_auto_skips_kubernetes_without_role(auth: AuthSetup, tmp_path: Path) -> None:
    token_file = tmp_path / "sa-token"
    token_file.write_text(jwt.encode(SA_CLAIMS, auth.key, algorithm="RS256"))
    (tmp_path / ".vault-token").write_text(auth.server.create_token(["erelease-ci"]))
    env = auth.environ(HOME=str(tmp_path))
    with _vault(auth.server, env, path=token_file) as vault:
        assert vault.resolve([REF])[REF].reveal() == "from-ci"


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("auto", "no Vault credentials found"),
        ("token", "no token was found"),
        ("approle", "VAULT_ROLE_ID"),
        ("jwt", "GitHub Actions OIDC token"),
        ("kubernetes", "no service-account token"),
        ("ldap", "unknown method 'ldap'"),
    ],
)
def test_missing_credentials(auth: AuthSetup, tmp_path: Path, method: str, message: str) -> None:
    env = auth.environ(HOME=str(tmp_path))
    vault = _vault(auth.server, env, path=tmp_path / "absent", method=method)
    with vault, pytest.raises(SecretsError, match=message):
        vault.resolve([REF])
