"""The incoming connectivity test (SPEC §5.5) passes against serve, using only the four
shared values, and names the failure once the connection is rotated or deleted."""

from __future__ import annotations

from erelease import settings as erelease_settings
from erelease.checks import IncomingTarget, run_checks
from erelease.model import Secret
from tests.integration.serve.conftest import Client, LiveServer, Registry


def target(server: LiveServer, client: Client) -> IncomingTarget:
    return IncomingTarget(
        address=f"incoming/{client.name}",
        name=client.name,
        token_url=f"{server.token_url}?appName={client.app_name}",
        etranscripts_url=server.transcripts_url,
        client_id=client.client_id,
        client_secret=Secret(client.secret),
    )


def test_incoming_check_round_trip(server: LiveServer, registry: Registry) -> None:
    client = registry.add("e2e")
    settings = erelease_settings.TestSettings(concurrency=2, timeout=10, retries=0)
    [result] = run_checks([target(server, client)], settings=settings)
    assert (result.status, result.reason) == ("valid", "ok"), result.message

    stale = target(server, client)
    registry.rotate(client)
    [result] = run_checks([stale], settings=settings)
    assert (result.status, result.reason) == ("failed", "invalid_client")
    assert client.secret not in result.message
