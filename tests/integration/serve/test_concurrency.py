"""The Token URL's own ASGI endpoint under load and when it fails.

It commits the tokens issued in one turn of the event loop together
(``_batch``): under concurrent load every request must still get a distinct,
stored, usable token, and the commits must have held more than one token. It
bypasses Starlette, so an unexpected error must still end as a bare 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from erelease.serve._app import ServeApp
from tests.integration.serve.conftest import LiveServer, Registry

CONNECTIONS = 16
ROUNDS = 8


async def _issue(server: LiveServer, client_id: str, secret: str) -> list[str]:
    limits = httpx.Limits(max_connections=CONNECTIONS)
    async with httpx.AsyncClient(timeout=10, limits=limits) as http:

        async def one() -> str:
            response = await http.post(
                server.token_url,
                params={"appName": "intNC"},
                data={"grant_type": "client_credentials"},
                auth=(client_id, secret),
            )
            assert response.status_code == 200, response.text
            token = response.json()["access_token"]
            assert isinstance(token, str)
            return token

        tokens: list[str] = []
        for _ in range(ROUNDS):
            tokens += await asyncio.gather(*(one() for _ in range(CONNECTIONS)))
        return tokens


def test_concurrent_requests_get_distinct_stored_tokens(
    http: httpx.Client, server: LiveServer, registry: Registry
) -> None:
    client = registry.add("burst")
    tokens = asyncio.run(_issue(server, client.client_id, client.secret))
    assert len(set(tokens)) == CONNECTIONS * ROUNDS
    for bearer in tokens[:: CONNECTIONS // 2]:
        response = http.get(server.transcripts_url, headers={"Authorization": f"Bearer {bearer}"})
        assert response.status_code == 200
    assert isinstance(server.app, ServeApp)
    batcher = server.app.token_endpoint.batcher
    assert batcher is not None
    assert batcher.commits < batcher.tokens  # some commits held several tokens


def test_an_unexpected_error_in_the_token_endpoint_is_a_plain_500(
    http: httpx.Client,
    start_server: Callable[..., LiveServer],
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = registry.add("boom")
    server = start_server()
    assert isinstance(server.app, ServeApp)

    def broken(stack: str, client_id: str) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(server.app.token_endpoint.ctx, "client_auth", broken)
    response = http.post(
        server.token_url,
        params={"appName": "intNC"},
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, client.secret),
    )
    assert response.status_code == 500
    assert response.text == "Internal Server Error"  # no traceback, no detail
    assert "a bug" not in response.text
