"""RFC 6749 requests and the reading of every kind of answer, without a server."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from erelease.checks._oauth import (
    Reply,
    basic_authorization,
    check_resource_reply,
    parse_token_reply,
    token_request,
    transient_failure,
)
from erelease.checks._outcome import CheckFailure
from erelease.model import Secret

WHERE = "token endpoint at vendor.example/oauth/token"


def reply(
    status: int, body: object = b"", content_type: str = "application/json", **headers: str
) -> Reply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {
        "content-type": content_type,
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }
    return Reply(status=status, headers=httpx.Headers(all_headers), body=raw)


def failure(r: Reply) -> CheckFailure:
    with pytest.raises(CheckFailure) as info:
        parse_token_reply(r, WHERE)
    return info.value


class TestClientAuthentication:
    def test_basic_form_urlencodes_id_and_secret_before_base64(self) -> None:
        # RFC 6749 §2.3.1 / Appendix B: a ":" in the secret must not split it.
        header = basic_authorization("my id:1", Secret("p%ss:w+rd/é"))
        assert header.startswith("Basic ")
        decoded = base64.b64decode(header[6:]).decode()
        assert decoded == "my+id%3A1:p%25ss%3Aw%2Brd%2F%C3%A9"

    def test_plain_credentials_are_unchanged(self) -> None:
        header = basic_authorization(Secret("3235fff-5858-b-700"), Secret("abcDEF123_.-"))
        assert base64.b64decode(header[6:]).decode() == "3235fff-5858-b-700:abcDEF123_.-"

    def test_password_grant_with_basic(self) -> None:
        form, headers = token_request(
            grant_type="password",
            client_auth="basic",
            client_id=Secret("key"),
            client_secret=Secret("secret"),
            username=Secret("user@x"),
            password=Secret("pw"),
        )
        assert form == {"grant_type": "password", "username": "user@x", "password": "pw"}
        assert headers["Authorization"].startswith("Basic ")

    def test_client_credentials_in_the_body(self) -> None:
        form, headers = token_request(
            grant_type="client_credentials",
            client_auth="body",
            client_id="key",
            client_secret=Secret("secret"),
        )
        assert form == {
            "grant_type": "client_credentials",
            "client_id": "key",
            "client_secret": "secret",
        }
        assert "Authorization" not in headers

    def test_password_grant_without_a_password_is_secret_unavailable(self) -> None:
        with pytest.raises(CheckFailure) as info:
            token_request(
                grant_type="password",
                client_auth="basic",
                client_id="key",
                client_secret=Secret("s"),
                username=Secret("u"),
            )
        assert info.value.reason == "secret_unavailable"


class TestTokenReply:
    @pytest.mark.parametrize("token_type", ["Bearer", "bearer", "BEARER"])
    def test_success(self, token_type: str) -> None:
        token = parse_token_reply(
            reply(200, {"access_token": "t0k", "token_type": token_type}), WHERE
        )
        assert isinstance(token, Secret)
        assert token.reveal() == "t0k"
        assert "t0k" not in repr(token)

    @pytest.mark.parametrize(
        ("status", "body", "content_type", "reason", "text"),
        [
            (
                200,
                {"access_token": "t", "token_type": "mac"},
                "application/json",
                "bad_response",
                "'mac'",
            ),
            (200, {"access_token": "t"}, "application/json", "bad_response", "token_type"),
            (
                200,
                {"access_token": "", "token_type": "Bearer"},
                "application/json",
                "bad_response",
                "empty",
            ),
            (
                200,
                {"token_type": "Bearer"},
                "application/json",
                "bad_response",
                "without an access_token",
            ),
            (
                200,
                b"<!DOCTYPE html><html>Sign in</html>",
                "text/html",
                "bad_response",
                "login page",
            ),
            (200, b"<html><body>hi", "text/plain", "bad_response", "HTML page"),
            (200, b"ok", "text/plain", "bad_response", "text/plain"),
            (200, b"", "application/json", "bad_response", "empty body"),
            (200, [1, 2], "application/json", "bad_response", "a body that is not a JSON object"),
            (200, b"{not json", "application/json", "bad_response", "not a JSON object"),
            (
                200,
                b"access_token=t",
                "application/x-www-form-urlencoded",
                "bad_response",
                "an application/x-www-form-urlencoded body instead of JSON",
            ),
            (400, {"error": "invalid_client"}, "application/json", "invalid_client", "HTTP 400"),
            (
                401,
                {"error": "invalid_client", "error_description": "bad"},
                "application/json",
                "invalid_client",
                "bad",
            ),
            (400, {"error": "invalid_grant"}, "application/json", "invalid_grant", "HTTP 400"),
            (401, {"error": "invalid_grant"}, "application/json", "invalid_grant", "HTTP 401"),
            (200, {"error": "invalid_grant"}, "application/json", "invalid_grant", "HTTP 200"),
            (
                400,
                {"error": "unauthorized_client"},
                "application/json",
                "http_status",
                "unauthorized_client",
            ),
            (
                400,
                {"error": "unsupported_grant_type"},
                "application/json",
                "http_status",
                "unsupported_grant_type",
            ),
            (401, b"", "text/plain", "http_status", "HTTP 401"),
            (
                404,
                b"<html>Not Found</html>",
                "text/html",
                "http_status",
                "HTTP 404 with an HTML page",
            ),
            (
                400,
                {"error": "bad\x01code"},
                "application/json",
                "http_status",
                "HTTP 400 with a JSON body",
            ),
        ],
    )
    def test_failures(
        self, status: int, body: object, content_type: str, reason: str, text: str
    ) -> None:
        f = failure(reply(status, body, content_type))
        assert f.reason == reason
        assert text in f.message
        assert not f.retryable

    def test_error_description_is_sanitized_and_truncated(self) -> None:
        description = "\x1b[31mred\x1b[0m\nnext\u202eline " + "x" * 1000
        f = failure(reply(401, {"error": "invalid_client", "error_description": description}))
        assert "\x1b" not in f.message and "\n" not in f.message and "\u202e" not in f.message
        assert "[31mred [0m next line" in f.message
        assert len(f.message) < 1200
        assert "…" in f.message

    def test_redirect_shows_where_but_not_the_query(self) -> None:
        r = reply(302, b"", "text/html", location="https://sso.vendor.example/login?code=abc123")
        f = failure(r)
        assert f.reason == "http_status"
        assert "sso.vendor.example/login" in f.message
        assert "abc123" not in f.message

    def test_redirect_hides_userinfo(self) -> None:
        location = "https://admin:hunter2@sso.vendor.example:8443/login"
        f = failure(reply(307, b"", "text/html", location=location))
        assert "a redirect to https://sso.vendor.example:8443/login;" in f.message
        assert "hunter2" not in f.message and "admin" not in f.message


class TestTransientAndResource:
    def test_5xx_and_429_are_retryable(self) -> None:
        assert transient_failure(reply(503, b"busy", "text/plain"), WHERE) is not None
        limited = transient_failure(reply(429, b"", "text/plain", retry_after="7"), WHERE)
        assert limited is not None and limited.retryable and limited.retry_after == 7.0
        assert limited.reason == "http_status"

    @pytest.mark.parametrize("status", [200, 302, 400, 401, 403, 404])
    def test_other_statuses_are_not(self, status: int) -> None:
        assert transient_failure(reply(status), WHERE) is None

    def test_resource_200_is_success(self) -> None:
        check_resource_reply(reply(200, {"transcripts": []}), "eTranscripts URL x")

    def test_resource_bearer_error_is_named(self) -> None:
        r = reply(
            401, b"", "text/plain", www_authenticate='Bearer realm="x", error="invalid_token"'
        )
        with pytest.raises(CheckFailure) as info:
            check_resource_reply(r, "eTranscripts URL x")
        assert info.value.reason == "http_status"
        assert "invalid_token" in info.value.message

    def test_resource_other_status(self) -> None:
        with pytest.raises(CheckFailure) as info:
            check_resource_reply(reply(404, b"nope", "text/plain"), "eTranscripts URL x")
        assert "HTTP 404" in info.value.message
