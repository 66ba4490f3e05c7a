"""A vendor's tokens and echoes of what we sent reach no output, log or state file.

The existing checks canary proves that the secrets we send are redacted from a
result's message. This covers what the vendor sends back: its access token
inside an *error* reply (which the state store keeps as the last test's
message), a token quoted where a token type belongs, and tokens or our own
credentials in response headers, which the HTTP library's debug trace (``-vv``)
would print verbatim.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote_plus

from tests.fixtures.common import CANARY
from tests.integration.security.conftest import VENDOR_TOKEN, SecureDistrict, outgoing

PATHS = {
    "headers": "/in-headers",
    "error": "/error-with-token",
    "mixed": "/token-type-is-token",
    "echo": "/echo",
}


def test_vendor_tokens_and_echoes_stay_out_of_every_output(
    secure_district: SecureDistrict, hostile_vendor: str
) -> None:
    district = secure_district
    for name, path in PATHS.items():
        district.write(name, outgoing(name, district.mount, hostile_vendor, path))
    applied = district.run("apply", "--auto-approve", "--no-test")
    assert applied.code == 0, applied.stderr
    runs = [
        district.run(*verbose, "test", *fmt)
        for verbose in ((), ("-v",), ("-vv",))
        for fmt in ((), ("--format", "json"))
    ]
    for run in runs:
        assert run.code == 3, (run.args, run.stderr)
        assert "Traceback" not in run.stderr
    results = {r["name"]: r for r in json.loads(runs[1].stdout)["results"]}
    assert {n: r["reason"] for n, r in results.items()} == {
        "headers": "ok",
        "error": "invalid_grant",
        "mixed": "bad_response",
        "echo": "invalid_client",
    }
    # the messages still say what happened, with the token blotted out
    assert "token *** issued" in results["error"]["message"]
    assert "token_type '***'" in results["mixed"]["message"]
    debug = runs[4].stderr
    assert "DEBUG" in debug  # -vv did turn on debug output
    forbidden = [
        VENDOR_TOKEN,
        CANARY,
        quote_plus(CANARY, safe=""),
        base64.b64encode(f"key-headers:{CANARY}-cs".encode()).decode(),
        base64.b64encode(f"key-echo:{CANARY}-cs".encode()).decode(),
    ]
    state = district.path / ".erelease"
    blobs = {p.name: p.read_bytes().decode("latin-1") for p in state.glob("state.db*")}
    outputs = {f"{r.args}": r.stdout + r.stderr for r in [applied, *runs]}
    for where, text in {**outputs, **blobs}.items():
        for value in forbidden:
            assert value not in text, (where, value)
