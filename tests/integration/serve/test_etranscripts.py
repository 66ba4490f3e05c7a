"""The eTranscripts URL against a live server: RFC 6750 bearer, listing, download."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.serve.conftest import DATA, Client, LiveServer, Registry, get_token

DOCS = ["HST-2025-000417", "HST-2025-000452", "HST-2025-000508"]  # in createdDateTime order


@pytest.fixture
def client(registry: Registry) -> Client:
    return registry.add("provider")


@pytest.fixture
def bearer(http: httpx.Client, server: LiveServer, client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {get_token(http, server, client)}"}


def listing(
    http: httpx.Client, server: LiveServer, headers: dict[str, str], **params: Any
) -> httpx.Response:
    return http.get(server.transcripts_url, params=params, headers=headers)


def disclosures_of(registry: Registry, client: Client) -> list[Any]:
    rows = registry.store.list_disclosures(stack=registry.stack)
    return [d for d in rows if d.client_id == client.client_id]


# -- RFC 6750 §3 challenges ----------------------------------------------------


def test_no_credentials_gets_a_bare_challenge(http: httpx.Client, server: LiveServer) -> None:
    response = http.get(server.transcripts_url)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="erelease"'


def test_another_scheme_gets_a_bare_challenge(
    http: httpx.Client, server: LiveServer, client: Client
) -> None:
    response = http.get(server.transcripts_url, auth=(client.client_id, client.secret))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="erelease"'


@pytest.mark.parametrize("value", ["Bearer", "Bearer a b", "Bearer ###", "Bearer =abc"])
def test_malformed_bearer_is_invalid_request(
    http: httpx.Client, server: LiveServer, value: str
) -> None:
    response = http.get(server.transcripts_url, headers={"Authorization": value})
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]
    assert response.json()["error"] == "invalid_request"


def test_unknown_token_is_invalid_token(http: httpx.Client, server: LiveServer) -> None:
    response = http.get(server.transcripts_url, headers={"Authorization": "Bearer " + "A" * 43})
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="erelease", error="invalid_token"')
    assert response.json()["error"] == "invalid_token"


def test_token_in_the_query_is_refused(
    http: httpx.Client, server: LiveServer, bearer: dict[str, str]
) -> None:
    token = bearer["Authorization"].split()[1]
    response = http.get(server.transcripts_url, params={"access_token": token})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_bearer_scheme_is_case_insensitive(
    http: httpx.Client, server: LiveServer, bearer: dict[str, str]
) -> None:
    token = bearer["Authorization"].split()[1]
    assert listing(http, server, {"Authorization": f"bearer {token}"}).status_code == 200


def test_expired_token_is_refused(
    http: httpx.Client, start_server: Callable[..., LiveServer], client: Client
) -> None:
    server = start_server(token_ttl=0.4)
    response = http.post(
        server.token_url,
        params={"appName": client.app_name},
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, client.secret),
    )
    assert response.json()["expires_in"] == 0
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert listing(http, server, headers).status_code == 200
    time.sleep(0.5)
    expired = listing(http, server, headers)
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]


# -- listing -----------------------------------------------------------------


def test_lists_every_transcript_in_created_order(
    http: httpx.Client, server: LiveServer, bearer: dict[str, str]
) -> None:
    response = listing(http, server, bearer)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert [item["documentId"] for item in body["items"]] == DOCS
    assert body["next"] is None
    first = body["items"][0]
    assert first["createdDateTime"] == "2025-01-15T14:12:44Z"
    assert first["href"] == f"{server.transcripts_url}/HST-2025-000417"


def test_pagination_walks_every_item_once(
    http: httpx.Client, server: LiveServer, bearer: dict[str, str]
) -> None:
    for limit in (1, 2, 3):
        seen: list[str] = []
        cursor: str | None = None
        for _ in range(5):
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            body = listing(http, server, bearer, **params).json()
            assert len(body["items"]) <= limit
            seen += [item["documentId"] for item in body["items"]]
            cursor = body["next"]
            if cursor is None:
                break
        assert seen == DOCS, limit


def test_since_filters_by_created_time(
    http: httpx.Client, server: LiveServer, bearer: dict[str, str]
) -> None:
    def ids(since: str) -> list[str]:
        body = listing(http, server, bearer, since=since).json()
        return [item["documentId"] for item in body["items"]]

    assert ids("2025-02-01") == DOCS[1:]
    assert ids("2025-02-03T19:05:10Z") == DOCS[1:]  # inclusive
    assert ids("2025-02-03T14:05:11-05:00") == DOCS[2:]
    assert ids("2030-01-01T00:00:00+00:00") == []
    assert ids("1999-01-01") == DOCS


def test_since_and_cursor_combine(
    http: httpx.Client, server: LiveServer, bearer: dict[str, str]
) -> None:
    first = listing(http, server, bearer, since="2025-02-01", limit=1).json()
    assert [i["documentId"] for i in first["items"]] == DOCS[1:2]
    second = listing(http, server, bearer, since="2025-02-01", cursor=first["next"]).json()
    assert [i["documentId"] for i in second["items"]] == DOCS[2:]
    assert second["next"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"since": "2025-13-01"},
        {"limit": "0"},
        {"limit": "-5"},
        {"limit": "ten"},
        {"cursor": "not-a-cursor"},
        {"cursor": "W10"},  # base64 of [] : decodes, but is no key
        {"cursor": "x" * 1000},
        # valid ISO 8601 that no UTC time can hold: was a 500
        {"since": "0001-01-01T00:00:00+05:00"},
        {"since": "9999-12-31T23:59:59-05:00"},
        {"limit": "\u00b2"},  # a Unicode digit: str.isdigit() says yes, int() says no
        {"limit": "\u0661"},  # ARABIC-INDIC DIGIT ONE
    ],
)
def test_bad_list_parameters(
    http: httpx.Client, server: LiveServer, bearer: dict[str, str], params: dict[str, str]
) -> None:
    response = listing(http, server, bearer, **params)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request"
    assert "int()" not in body["error_description"]  # our words, not Python's


def test_tampered_cursor_is_refused(
    http: httpx.Client, server: LiveServer, bearer: dict[str, str]
) -> None:
    cursor = listing(http, server, bearer, limit=1).json()["next"]
    assert listing(http, server, bearer, cursor=cursor).status_code == 200
    for tampered in (cursor + "\x00", cursor + "!", "*" + cursor, cursor[:-2] + "~~"):
        response = listing(http, server, bearer, cursor=tampered)
        assert response.status_code == 400, tampered
        assert response.json()["error"] == "invalid_request"


def test_large_limit_is_capped(
    http: httpx.Client, server: LiveServer, bearer: dict[str, str]
) -> None:
    assert len(listing(http, server, bearer, limit=100000).json()["items"]) == 3
    # more digits than int() accepts by default (4300) is still just "a lot"
    assert len(listing(http, server, bearer, limit="9" * 5000).json()["items"]) == 3
    assert listing(http, server, bearer, limit="0001").json()["next"] is not None


# -- download and disclosures --------------------------------------------------


def test_download_returns_the_pesc_xml_and_records_a_disclosure(
    http: httpx.Client,
    server: LiveServer,
    registry: Registry,
    client: Client,
    bearer: dict[str, str],
) -> None:
    href = listing(http, server, bearer).json()["items"][0]["href"]
    response = http.get(href, headers=bearer)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/xml"
    assert response.content == (DATA / "hst-2025-000417-okafor.xml").read_bytes()
    [disclosure] = disclosures_of(registry, client)
    assert disclosure.document_id == "HST-2025-000417"
    assert disclosure.connection == client.name
    assert disclosure.remote_addr == "127.0.0.1"
    assert disclosure.released_at.endswith("Z")


def test_every_download_is_recorded(
    http: httpx.Client,
    server: LiveServer,
    registry: Registry,
    client: Client,
    bearer: dict[str, str],
) -> None:
    for doc in DOCS + DOCS[:1]:
        assert http.get(f"{server.transcripts_url}/{doc}", headers=bearer).status_code == 200
    assert [d.document_id for d in disclosures_of(registry, client)] == DOCS + DOCS[:1]


def test_unknown_document_is_404_and_not_recorded(
    http: httpx.Client,
    server: LiveServer,
    registry: Registry,
    client: Client,
    bearer: dict[str, str],
) -> None:
    response = http.get(f"{server.transcripts_url}/HST-1999-000000", headers=bearer)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert disclosures_of(registry, client) == []


def test_download_needs_a_token(http: httpx.Client, server: LiveServer) -> None:
    response = http.get(f"{server.transcripts_url}/{DOCS[0]}")
    assert response.status_code == 401


def raw_get(server: LiveServer, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Send the path exactly as written (no client-side dot-segment removal)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


TRAVERSALS = [
    "../../etc/passwd",
    "../../../../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252fetc%252fpasswd",
    "..%5C..%5Cetc%5Cpasswd",
    "....//....//etc/passwd",
    "%2Fetc%2Fpasswd",
    "/etc/passwd",
    "hst-2025-000417-okafor.xml",  # a file name is not a documentId
    "..%2Fhst-2025-000417-okafor.xml",
    "HST-2025-000417%00.xml",
    "%00",
]


@pytest.mark.parametrize("document", TRAVERSALS)
def test_path_traversal_reaches_no_file(
    server: LiveServer, registry: Registry, client: Client, bearer: dict[str, str], document: str
) -> None:
    path = urlsplit(server.transcripts_url).path + "/" + document
    status, body = raw_get(server, path, bearer)
    assert status in (400, 404), (status, body[:200])
    assert b"root:" not in body
    assert b"HighSchoolTranscript" not in body
    assert disclosures_of(registry, client) == []


def test_path_traversal_without_a_token_is_401(server: LiveServer) -> None:
    path = urlsplit(server.transcripts_url).path + "/..%2F..%2Fetc%2Fpasswd"
    status, _ = raw_get(server, path, {})
    assert status == 401


# -- operations ----------------------------------------------------------------


def test_healthz(http: httpx.Client, server: LiveServer) -> None:
    response = http.get(f"{server.origin}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_openapi_is_served_with_the_base_url(http: httpx.Client, server: LiveServer) -> None:
    document = http.get(f"{server.base_url}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": server.base_url}]
    assert "/oauth2/token" in document["paths"]


def test_unknown_route_is_json_404(http: httpx.Client, server: LiveServer) -> None:
    response = http.get(f"{server.base_url}/nope")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_head_releases_nothing_and_records_nothing(
    http: httpx.Client,
    server: LiveServer,
    registry: Registry,
    client: Client,
    bearer: dict[str, str],
) -> None:
    response = http.head(f"{server.transcripts_url}/{DOCS[0]}", headers=bearer)
    assert response.status_code == 200
    assert response.content == b""
    assert disclosures_of(registry, client) == []
