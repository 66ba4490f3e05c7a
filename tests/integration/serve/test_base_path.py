"""The path of ``incoming.baseUrl`` is the base path, however the district spells it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from erelease.state import open_store
from tests.fixtures.common import free_port
from tests.integration.serve.conftest import LiveServer, Registry, get_token, make_settings


@pytest.fixture(params=["/my%20district/campus", "/caf%C3%A9", "/k12.district+42"])
def odd_base(
    request: pytest.FixtureRequest, workdir: Path, registry: Registry
) -> Iterator[LiveServer]:
    port = free_port()
    settings = make_settings(
        workdir, workdir / "transcripts", base_url=f"http://127.0.0.1:{port}{request.param}"
    )
    store = open_store(registry.url)
    server = LiveServer(settings=settings, store=store, port=port).start()
    try:
        yield server
    finally:
        server.stop()
        store.close()


def test_percent_encoded_base_path_answers_the_urls_apply_hands_out(
    http: httpx.Client, registry: Registry, odd_base: LiveServer
) -> None:
    # The URLs are used exactly as apply builds them from incoming.baseUrl (SPEC §2.2);
    # the server sees the percent-decoded path (ASGI) and must still match it.
    client = registry.add("odd")
    bearer = {"Authorization": f"Bearer {get_token(http, odd_base, client)}"}
    listing = http.get(odd_base.transcripts_url, headers=bearer)
    assert listing.status_code == 200, listing.text
    items = listing.json()["items"]
    assert items and all(i["href"].startswith(odd_base.transcripts_url + "/") for i in items)
    document = http.get(items[0]["href"], headers=bearer)
    assert document.status_code == 200
    assert document.headers["content-type"].startswith("application/xml")
    assert http.get(odd_base.base_url + "/openapi.json").status_code == 200
