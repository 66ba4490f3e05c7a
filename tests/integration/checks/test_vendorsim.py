"""The simulator itself: standalone start-up, the upload endpoint, RFC 6749 details."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from erelease.devtools.vendorsim import VendorSim
from tests.fixtures.common import CANARY
from tests.fixtures.vendor import VENDOR_USERNAME, new_client

PESC = b"""<?xml version="1.0" encoding="UTF-8"?>
<HSTrn:HighSchoolTranscript xmlns:HSTrn="urn:org:pesc:message:HighSchoolTranscript:v1.3.0">
  <TransmissionData><DocumentID>1</DocumentID></TransmissionData>
</HSTrn:HighSchoolTranscript>"""


def token(sim: VendorSim, client_id: str) -> str:
    response = httpx.post(
        sim.token_url,
        data={"grant_type": "password", "username": VENDOR_USERNAME, "password": CANARY},
        auth=(client_id, CANARY),
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    return str(response.json()["access_token"])


def test_upload_accepts_pesc_xml_with_a_bearer_token(vendor: VendorSim) -> None:
    client = new_client(vendor)
    bearer = {"Authorization": f"Bearer {token(vendor, client.client_id)}"}
    xml = {"Content-Type": "application/xml"}
    assert httpx.post(vendor.upload_url, content=PESC, headers={**bearer, **xml}).status_code == 202
    assert httpx.post(vendor.upload_url, content=PESC, headers=xml).status_code == 401
    assert (
        httpx.post(vendor.upload_url, content=b"<a>", headers={**bearer, **xml}).status_code == 400
    )
    assert vendor.stats(client.client_id).uploads == 1  # the well-formed one


def test_invalid_client_carries_www_authenticate(vendor: VendorSim) -> None:
    response = httpx.post(
        vendor.token_url, data={"grant_type": "client_credentials"}, auth=("nobody", "x")
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


def test_two_client_authentication_methods_are_refused(vendor: VendorSim) -> None:
    client = new_client(vendor)
    response = httpx.post(
        vendor.token_url,
        data={"grant_type": "client_credentials", "client_id": client.client_id},
        auth=(client.client_id, CANARY),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_standalone(tmp_path: Path) -> None:
    credentials = tmp_path / "clients.yaml"
    credentials.write_text(
        "latency: 0.01\nclients:\n"
        "  - {consumer_key: demo, consumer_secret: s3cret, username: u, password: p}\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "erelease.devtools.vendorsim", "--port", "0",
         "--credentials-file", str(credentials)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("vendorsim listening on http://127.0.0.1:")
        endpoints = json.loads(process.stdout.readline())
        response = httpx.post(
            endpoints["token_url"],
            data={"grant_type": "password", "username": "u", "password": "p"},
            auth=("demo", "s3cret"),
        )
        assert response.status_code == 200
        assert response.json()["token_type"] == "Bearer"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        if process.stdout is not None:
            process.stdout.close()
