"""The Token URL against a live server: RFC 6749 §4.4, §2.3.1, §5.1, §5.2."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from urllib.parse import quote_plus

import httpx
import pytest

from tests.integration.serve.conftest import Client, LiveServer, Registry

FORM = {"grant_type": "client_credentials"}


def basic(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def post(
    http: httpx.Client,
    server: LiveServer,
    *,
    app_name: str | None = "intNC",
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    params = {"appName": app_name} if app_name is not None else {}
    if content is not None:
        return http.post(server.token_url, params=params, content=content, headers=headers)
    return http.post(server.token_url, params=params, data=data or {}, headers=headers)


def assert_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"
    if status == 401:
        assert response.headers["www-authenticate"].startswith('Basic realm="erelease"')


@pytest.fixture
def client(registry: Registry) -> Client:
    return registry.add("cfnc")


def test_basic_auth_issues_a_bearer_token(
    http: httpx.Client, server: LiveServer, client: Client
) -> None:
    response = post(
        http, server, data=FORM, headers={"Authorization": basic(client.client_id, client.secret)}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert len(base64.urlsafe_b64decode(body["access_token"] + "=")) == 32  # 256 bits
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert "server" not in response.headers


def test_body_auth_issues_a_bearer_token(
    http: httpx.Client, server: LiveServer, client: Client
) -> None:
    data = {**FORM, "client_id": client.client_id, "client_secret": client.secret}
    response = post(http, server, data=data)
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


def test_httpx_basic_auth_and_raw_secret_with_reserved_characters(
    http: httpx.Client, server: LiveServer, registry: Registry
) -> None:
    """A secret holding '+' and '%' works both RFC-encoded and sent raw."""
    odd = registry.add("odd", secret="a+b%2Fc d" + "x" * 40)
    encoded = post(
        http, server, data=FORM, headers={"Authorization": basic(odd.client_id, odd.secret)}
    )
    assert encoded.status_code == 200
    raw = http.post(
        server.token_url, params={"appName": "intNC"}, data=FORM, auth=(odd.client_id, odd.secret)
    )
    assert raw.status_code == 200


def test_each_token_is_new(http: httpx.Client, server: LiveServer, client: Client) -> None:
    auth = {"Authorization": basic(client.client_id, client.secret)}
    tokens = {post(http, server, data=FORM, headers=auth).json()["access_token"] for _ in range(5)}
    assert len(tokens) == 5


def test_tokens_are_stored_only_as_digests(
    http: httpx.Client, server: LiveServer, client: Client, registry: Registry
) -> None:
    token = post(
        http, server, data=FORM, headers={"Authorization": basic(client.client_id, client.secret)}
    ).json()["access_token"]
    database = registry.url.removeprefix("sqlite:///")
    with open(database, "rb") as fh:
        raw = fh.read()
    for suffix in ("-wal",):
        try:
            with open(database + suffix, "rb") as fh:
                raw += fh.read()
        except FileNotFoundError:
            pass
    assert token.encode() not in raw
    assert client.secret.encode() not in raw


@pytest.mark.parametrize(
    "secret_of, client_id_of",
    [
        (lambda c: c.secret + "x", lambda c: c.client_id),  # wrong secret
        (lambda c: c.secret, lambda c: "ZZZZZZZZZZZZZZZZ"),  # unknown client
        (lambda c: c.secret, lambda c: "../../etc/passwd"),  # not even an ID
        (lambda c: "", lambda c: c.client_id),  # empty secret
    ],
    ids=["wrong-secret", "unknown-client", "bogus-id", "empty-secret"],
)
def test_bad_credentials_are_indistinguishable(
    http: httpx.Client,
    server: LiveServer,
    client: Client,
    secret_of: Callable[[Client], str],
    client_id_of: Callable[[Client], str],
) -> None:
    response = post(
        http,
        server,
        data=FORM,
        headers={"Authorization": basic(client_id_of(client), secret_of(client))},
    )
    assert_error(response, 401, "invalid_client")
    assert response.json()["error_description"] == "client authentication failed"


def test_wrong_app_name_is_invalid_client(
    http: httpx.Client, server: LiveServer, client: Client
) -> None:
    auth = {"Authorization": basic(client.client_id, client.secret)}
    response = post(http, server, app_name="intMN", data=FORM, headers=auth)
    assert_error(response, 401, "invalid_client")
    assert response.json()["error_description"] == "client authentication failed"


def test_missing_app_name_is_invalid_request(
    http: httpx.Client, server: LiveServer, client: Client
) -> None:
    auth = {"Authorization": basic(client.client_id, client.secret)}
    assert_error(post(http, server, app_name=None, data=FORM, headers=auth), 400, "invalid_request")
    twice = http.post(server.token_url + "?appName=intNC&appName=intNC", data=FORM, headers=auth)
    assert_error(twice, 400, "invalid_request")


def test_unsupported_grant_type(http: httpx.Client, server: LiveServer, client: Client) -> None:
    auth = {"Authorization": basic(client.client_id, client.secret)}
    response = post(
        http,
        server,
        data={"grant_type": "password", "username": "u", "password": "p"},
        headers=auth,
    )
    assert_error(response, 400, "unsupported_grant_type")


def test_unsupported_grant_type_is_not_told_to_strangers(
    http: httpx.Client, server: LiveServer, client: Client
) -> None:
    auth = {"Authorization": basic(client.client_id, "wrong")}
    assert_error(
        post(http, server, data={"grant_type": "password"}, headers=auth), 401, "invalid_client"
    )


def test_missing_grant_type(http: httpx.Client, server: LiveServer, client: Client) -> None:
    auth = {"Authorization": basic(client.client_id, client.secret)}
    assert_error(post(http, server, data={}, headers=auth), 400, "invalid_request")
    assert_error(post(http, server, data={"grant_type": ""}, headers=auth), 400, "invalid_request")


def test_no_client_authentication(http: httpx.Client, server: LiveServer) -> None:
    assert_error(post(http, server, data=FORM), 401, "invalid_client")
    assert_error(post(http, server, data={**FORM, "client_id": "abc"}), 401, "invalid_client")


def test_client_secret_without_client_id(http: httpx.Client, server: LiveServer) -> None:
    assert_error(post(http, server, data={**FORM, "client_secret": "s"}), 400, "invalid_request")


def test_both_authentication_methods_at_once(
    http: httpx.Client, server: LiveServer, client: Client
) -> None:
    auth = {"Authorization": basic(client.client_id, client.secret)}
    data = {**FORM, "client_id": client.client_id, "client_secret": client.secret}
    assert_error(post(http, server, data=data, headers=auth), 400, "invalid_request")
    other_id = {**FORM, "client_id": "someoneElse00000"}
    assert_error(post(http, server, data=other_id, headers=auth), 400, "invalid_request")
    # The same client_id alongside Basic is allowed (RFC 6749 §3.2.1).
    same_id = {**FORM, "client_id": client.client_id}
    assert post(http, server, data=same_id, headers=auth).status_code == 200


def test_credentials_in_the_url_are_refused(
    http: httpx.Client, server: LiveServer, client: Client
) -> None:
    query = f"appName=intNC&client_id={client.client_id}&client_secret={client.secret}"
    assert_error(http.post(f"{server.token_url}?{query}", data=FORM), 400, "invalid_request")


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Basic aWQ6c2VjcmV0a",
        "Basic aWQ6 c2VjcmV0",
    ],
    ids=["empty", "not-base64", "no-colon", "not-utf8", "bad-padding", "inner-space"],
)
def test_malformed_basic_header(http: httpx.Client, server: LiveServer, header: str) -> None:
    assert_error(
        post(http, server, data=FORM, headers={"Authorization": header}), 400, "invalid_request"
    )


@pytest.mark.parametrize("header", ["Bearer abc", "Digest username=x", "garbage"])
def test_other_schemes_are_invalid_client(
    http: httpx.Client, server: LiveServer, header: str
) -> None:
    assert_error(
        post(http, server, data=FORM, headers={"Authorization": header}), 401, "invalid_client"
    )


def test_two_authorization_headers(http: httpx.Client, server: LiveServer, client: Client) -> None:
    value = basic(client.client_id, client.secret)
    response = http.post(
        server.token_url,
        params={"appName": "intNC"},
        data=FORM,
        headers=[("Authorization", value), ("Authorization", value)],
    )
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "content_type, content",
    [
        ("application/json", b'{"grant_type": "client_credentials"}'),
        ("text/plain", b"grant_type=client_credentials"),
        ("application/x-www-form-urlencoded", b"grant_type=client_credentials&grant_type=password"),
        ("application/x-www-form-urlencoded", b"grant_type=\xff\xfe"),
        ("application/x-www-form-urlencoded", b"grant_type=client_credentials&&&=x"),
    ],
    ids=["json", "text", "repeated", "not-utf8", "garbled"],
)
def test_bad_bodies(
    http: httpx.Client, server: LiveServer, client: Client, content_type: str, content: bytes
) -> None:
    headers = {
        "Authorization": basic(client.client_id, client.secret),
        "Content-Type": content_type,
    }
    assert_error(post(http, server, content=content, headers=headers), 400, "invalid_request")


def test_form_content_type_with_charset_is_accepted(
    http: httpx.Client, server: LiveServer, client: Client
) -> None:
    headers = {
        "Authorization": basic(client.client_id, client.secret),
        "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
    }
    assert (
        post(http, server, content=b"grant_type=client_credentials", headers=headers).status_code
        == 200
    )


def test_oversized_body_is_refused(http: httpx.Client, server: LiveServer, client: Client) -> None:
    headers = {
        "Authorization": basic(client.client_id, client.secret),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    big = b"grant_type=client_credentials&pad=" + b"x" * (64 * 1024)
    assert_error(post(http, server, content=big, headers=headers), 413, "invalid_request")


def test_oversized_chunked_body_is_refused(
    http: httpx.Client, server: LiveServer, client: Client
) -> None:
    """No Content-Length to trust: the limit holds while streaming."""

    def chunks() -> Iterator[bytes]:
        yield b"grant_type=client_credentials&pad="
        for _ in range(40):
            yield b"x" * 1024

    headers = {
        "Authorization": basic(client.client_id, client.secret),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    response = http.post(
        server.token_url, params={"appName": "intNC"}, content=chunks(), headers=headers
    )
    assert_error(response, 413, "invalid_request")


def test_get_is_not_allowed(http: httpx.Client, server: LiveServer) -> None:
    response = http.get(server.token_url, params={"appName": "intNC"})
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_failures_per_address_are_throttled(
    http: httpx.Client, start_server: Callable[..., LiveServer], client: Client
) -> None:
    server = start_server(addr_failure_limit=3, client_failure_limit=100)
    bad = {"Authorization": basic("UnknownClient123", "nope")}
    for _ in range(3):
        assert_error(post(http, server, data=FORM, headers=bad), 401, "invalid_client")
    blocked = post(http, server, data=FORM, headers=bad)
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    # Once blocked, even good credentials from that address wait.
    good = {"Authorization": basic(client.client_id, client.secret)}
    assert post(http, server, data=FORM, headers=good).status_code == 429


def test_failures_per_client_are_throttled(
    http: httpx.Client, start_server: Callable[..., LiveServer], registry: Registry
) -> None:
    server = start_server(addr_failure_limit=100, client_failure_limit=3)
    victim, other = registry.add("victim"), registry.add("other")
    for _ in range(3):
        response = post(
            http, server, data=FORM, headers={"Authorization": basic(victim.client_id, "guess")}
        )
        assert_error(response, 401, "invalid_client")
    blocked = post(
        http, server, data=FORM, headers={"Authorization": basic(victim.client_id, victim.secret)}
    )
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    # Another client from the same address is not affected.
    fine = post(
        http, server, data=FORM, headers={"Authorization": basic(other.client_id, other.secret)}
    )
    assert fine.status_code == 200


def test_an_ipv6_caller_is_counted_by_its_64(
    http: httpx.Client, start_server: Callable[..., LiveServer], client: Client
) -> None:
    # The peer address comes from a trusted proxy's X-Forwarded-For, as in production.
    server = start_server(
        addr_failure_limit=2, client_failure_limit=100, forwarded_allow_ips="127.0.0.1"
    )
    bad = {"Authorization": basic("UnknownClient123", "nope")}

    def attempt(peer: str, headers: dict[str, str]) -> int:
        return post(
            http, server, data=FORM, headers={**headers, "X-Forwarded-For": peer}
        ).status_code

    assert attempt("2001:db8:1:2::1", bad) == 401
    assert attempt("2001:db8:1:2:ffff::2", bad) == 401
    # a third address of the same /64 is the same caller
    good = {"Authorization": basic(client.client_id, client.secret)}
    assert attempt("2001:db8:1:2::3", good) == 429
    # another /64, and an IPv4 peer, are not
    assert attempt("2001:db8:1:3::1", good) == 200
    assert attempt("192.0.2.10", good) == 200


def test_throttle_window_slides(
    http: httpx.Client, start_server: Callable[..., LiveServer], client: Client
) -> None:
    server = start_server(addr_failure_limit=2, failure_window=0.5)
    bad = {"Authorization": basic(client.client_id, "nope")}
    post(http, server, data=FORM, headers=bad)
    post(http, server, data=FORM, headers=bad)
    assert post(http, server, data=FORM, headers=bad).status_code == 429
    import time

    time.sleep(0.6)
    good = {"Authorization": basic(client.client_id, client.secret)}
    assert post(http, server, data=FORM, headers=good).status_code == 200
