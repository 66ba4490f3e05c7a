"""Reasons, safe text and the values the runner is given."""

from __future__ import annotations

import re
from urllib.parse import quote_plus

import pytest

from erelease.checks import REASONS, OutgoingTarget
from erelease.checks._outcome import redact, sanitize, utc_now
from erelease.model import Secret
from tests.fixtures.common import CANARY


def test_reasons_are_exactly_the_contract() -> None:
    assert set(REASONS) == {
        "ok", "dns", "connect", "tls", "timeout", "http_status", "invalid_client",
        "invalid_grant", "bad_response", "upload_unreachable", "secret_unavailable",
    }  # fmt: skip


def test_sanitize_makes_one_printable_line() -> None:
    assert sanitize("a\tb\r\nc\x00d\x1b[2J") == "a b c d [2J"
    assert sanitize("x" * 300, 10) == "xxxxxxxxx…"
    assert sanitize("  spaced   out  ") == "spaced out"


def test_redact_removes_raw_and_encoded_secrets() -> None:
    secret = CANARY + " +/:"
    text = f"user {secret} or {quote_plus(secret, safe='')} rejected"
    cleaned = redact(text, [Secret(secret), None])
    assert CANARY not in cleaned
    assert cleaned == "user *** or *** rejected"


def test_redact_catches_a_secret_quoted_through_sanitize() -> None:
    # A vendor's error_description is sanitized (whitespace collapsed, control
    # characters dropped) before the runner redacts the message.
    secret = "pa  ss\tword\x07" + CANARY
    quoted = sanitize(f"unknown password {secret} for user")
    assert redact(quoted, [Secret(secret)]) == "unknown password *** for user"


def test_redact_leaves_short_values_alone() -> None:
    assert redact("the ab test", [Secret("ab")]) == "the ab test"


def test_utc_now_is_iso_8601_utc() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utc_now())


def make_target(**changes: object) -> OutgoingTarget:
    values: dict[str, object] = {
        "address": "outgoing/x",
        "name": "x",
        "token_url": "https://vendor.example/oauth/token",
        "upload_host": "vendor.example",
        "upload_port": 443,
        "upload_tls": True,
        "consumer_key": Secret("key"),
        "consumer_secret": Secret(CANARY),
        "username": Secret("user"),
        "password": Secret(CANARY),
    }
    values.update(changes)
    return OutgoingTarget(**values)  # type: ignore[arg-type]


def test_a_target_never_shows_its_secrets() -> None:
    target = make_target()
    assert CANARY not in repr(target)
    assert CANARY not in str(target)


@pytest.mark.parametrize(("field", "value"), [("grant_type", "implicit"), ("client_auth", "jwt")])
def test_a_target_refuses_unknown_modes(field: str, value: str) -> None:
    with pytest.raises(ValueError):
        make_target(**{field: value})
