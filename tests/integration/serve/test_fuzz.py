"""Property tests of the endpoints against their OpenAPI description.

Whatever a caller sends, the server answers with a status the description
lists for that operation, a JSON body valid against the schema the
description gives for that status, the headers it names, an error from the
RFC 6749/6750 vocabulary, and never a 5xx; nothing but the seeded credentials
or a token gets a 200.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from erelease.serve import openapi_document
from tests.integration.serve.conftest import Client, LiveServer, Registry, get_token

DOC = openapi_document()
ERRORS = {
    "invalid_request",
    "invalid_client",
    "unsupported_grant_type",
    "temporarily_unavailable",
    "invalid_token",
    "unauthorized",
    "not_found",
}
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).map(
    str.strip
)
CLIENT_ID = "Fz9Qk2LmA7Xw3PcB"
SECRET = "fuzz-secret-0123456789abcdefghijklmnopqrstuvwxyzABCDEF"
form_values = st.dictionaries(
    st.sampled_from(["grant_type", "client_id", "client_secret", "scope", "x"]),
    st.sampled_from(["client_credentials", "password", "", CLIENT_ID, SECRET, "x" * 600])
    | st.text(max_size=20),
    max_size=4,
)


@pytest.fixture(scope="module")
def client(registry: Registry) -> Client:
    return registry.add("fuzz", secret=SECRET, client_id=CLIENT_ID)


def documented(path: str, method: str, status: int) -> bool:
    return str(status) in DOC["paths"][path][method]["responses"]


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (``#/components/...``) of the description."""
    ref = node.get("$ref")
    if ref is None:
        return node
    target: dict[str, Any] = DOC
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def conforms(path: str, method: str, response: httpx.Response) -> None:
    """The response is one the description lists: status, headers and JSON body schema."""
    described = DOC["paths"][path][method]["responses"].get(str(response.status_code))
    assert described is not None, f"{response.status_code} is not described: {response.text}"
    for header, spec in described.get("headers", {}).items():
        spec = resolve(spec)
        value = response.headers.get(header)
        if spec.get("required"):
            assert value is not None, f"{header} missing on {response.status_code}"
        if value is not None:
            Draft202012Validator(spec["schema"]).validate(
                int(value) if spec["schema"].get("type") == "integer" else value
            )
    media = response.headers.get("content-type", "").split(";")[0]
    assert media in described.get("content", {}), f"{media} is not described"
    if media == "application/json":
        # "#/components/..." references resolve against a root that holds the components
        schema = {**described["content"][media]["schema"], "components": DOC["components"]}
        Draft202012Validator(schema).validate(response.json())


def check_error(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body: dict[str, Any] = response.json()
        assert body["error"] in ERRORS
        if response.status_code == 401:
            assert "www-authenticate" in response.headers


@FUZZ
@given(
    authorization=st.none()
    | header_text
    | st.builds(lambda s: ("Basic " + s).strip(), header_text),
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "application/json", "text/plain", ""]
    ),
    form=form_values,
    raw=st.none() | st.binary(max_size=200),
    app_name=st.none() | st.sampled_from(["intNC", "intMN", ""]),
)
def test_token_endpoint_answers_within_its_description(
    http: httpx.Client,
    server: LiveServer,
    client: Client,
    authorization: str | None,
    content_type: str,
    form: dict[str, str],
    raw: bytes | None,
    app_name: str | None,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    if authorization is not None:
        headers["Authorization"] = authorization
    params = {"appName": app_name} if app_name is not None else {}
    content = raw if raw is not None else httpx.QueryParams(form).__str__().encode()
    response = http.post(server.token_url, params=params, content=content, headers=headers)
    check_error(response)
    conforms("/oauth2/token", "post", response)
    if response.status_code == 200:
        # only possible with the seeded secret in the body
        assert form.get("client_secret") == SECRET and form.get("client_id") == CLIENT_ID
        assert response.json()["token_type"] == "Bearer"


@pytest.fixture(scope="module")
def bearer(http: httpx.Client, server: LiveServer, client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {get_token(http, server, client)}"}


@FUZZ
@given(
    authorization=st.none()
    | header_text
    | st.builds(lambda s: ("Bearer " + s).strip(), header_text)
)
def test_listing_refuses_every_made_up_credential(
    http: httpx.Client, server: LiveServer, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = http.get(server.transcripts_url, headers=headers)
    check_error(response)
    conforms("/api/campus/transcript/eTranscripts", "get", response)
    assert response.status_code in (400, 401)
    assert response.headers["www-authenticate"].startswith('Bearer realm="erelease"')


# any ISO 8601 date-time with any offset, the edges of the calendar included
iso_times = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat(),
    st.datetimes()
    | st.datetimes(max_value=datetime(1, 1, 2))
    | st.datetimes(min_value=datetime(9999, 12, 30)),
    st.integers(-23 * 60 - 59, 23 * 60 + 59),
)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["since", "limit", "cursor", "other"]),
        st.text(max_size=40)
        | st.sampled_from(["2025-02-01", "1", "500", "2025-01-01T00:00:00Z"])
        | iso_times,
        max_size=3,
    )
)
def test_listing_parameters_answer_200_or_400(
    http: httpx.Client, server: LiveServer, bearer: dict[str, str], params: dict[str, str]
) -> None:
    response = http.get(server.transcripts_url, params=params, headers=bearer)
    check_error(response)
    assert response.status_code in (200, 400)
    conforms("/api/campus/transcript/eTranscripts", "get", response)
    if response.status_code == 200:
        body = response.json()
        assert set(body) == {"items", "next"}
        for item in body["items"]:
            assert set(item) == {"documentId", "createdDateTime", "href"}


@FUZZ
@given(
    # "." and ".." are dot segments the client itself removes (RFC 3986 §5.2.4),
    # so they never reach the server as a documentId.
    document_id=st.text(
        st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40
    ).filter(lambda s: s not in (".", ".."))
)
def test_any_document_id_is_a_key_lookup(
    http: httpx.Client, server: LiveServer, bearer: dict[str, str], document_id: str
) -> None:
    url = f"{server.transcripts_url}/{quote(document_id, safe='')}"
    response = http.get(url, headers=bearer)
    check_error(response)
    assert response.status_code in (200, 404)
    conforms("/api/campus/transcript/eTranscripts/{documentId}", "get", response)
    if response.status_code == 200:
        assert b"HighSchoolTranscript" in response.content
