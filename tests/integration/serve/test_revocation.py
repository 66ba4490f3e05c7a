"""Delete and rotate cut a provider off at once, on every replica; others carry on."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import httpx
import pytest

from erelease.state import open_store
from tests.integration.serve.conftest import DATA, STACK, Client, LiveServer, Registry
from tests.integration.serve.replica import Replica


class Endpoint(Protocol):
    @property
    def token_url(self) -> str: ...

    @property
    def transcripts_url(self) -> str: ...


def token_status(http: httpx.Client, server: Endpoint, client: Client) -> tuple[int, str]:
    response = http.post(
        server.token_url,
        params={"appName": client.app_name},
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, client.secret),
    )
    body = response.json()
    return response.status_code, body.get("access_token") or body.get("error", "")


def token(http: httpx.Client, server: Endpoint, client: Client) -> str:
    status, value = token_status(http, server, client)
    assert status == 200, value
    return value


def pull(http: httpx.Client, server: Endpoint, bearer: str) -> int:
    response = http.get(server.transcripts_url, headers={"Authorization": f"Bearer {bearer}"})
    return response.status_code


def test_rotation_revokes_old_secret_and_tokens_at_once(
    http: httpx.Client, server: LiveServer, registry: Registry
) -> None:
    a, b = registry.add("rot-a"), registry.add("rot-b")
    old_token, b_token = token(http, server, a), token(http, server, b)
    assert pull(http, server, old_token) == 200

    new_a = registry.rotate(a)

    assert pull(http, server, old_token) == 401
    assert token_status(http, server, a) == (401, "invalid_client")  # the old secret
    assert pull(http, server, token(http, server, new_a)) == 200
    # the other client is unaffected
    assert pull(http, server, b_token) == 200
    assert pull(http, server, token(http, server, b)) == 200


def test_deletion_revokes_at_once(
    http: httpx.Client, server: LiveServer, registry: Registry
) -> None:
    a, b = registry.add("del-a"), registry.add("del-b")
    a_token, b_token = token(http, server, a), token(http, server, b)

    registry.delete(a)

    assert pull(http, server, a_token) == 401
    assert token_status(http, server, a) == (401, "invalid_client")
    assert pull(http, server, b_token) == 200


def test_replicas_on_one_sqlite_registry(
    http: httpx.Client, start_server: Callable[..., LiveServer], registry: Registry
) -> None:
    one, two = start_server(), start_server()
    client = registry.add("two-sqlite")
    bearer = token(http, one, client)
    assert pull(http, two, bearer) == 200  # a token from one replica works on the other
    registry.rotate(client)
    assert pull(http, one, bearer) == 401
    assert pull(http, two, bearer) == 401


@pytest.fixture
def pg_registry(pg_db_url: str) -> Iterator[Registry]:
    store = open_store(pg_db_url)
    try:
        yield Registry(store, pg_db_url)
    finally:
        store.close()


@pytest.fixture
def pg_workdir(tmp_path: Path) -> Path:
    shutil.copytree(DATA, tmp_path / "transcripts")
    return tmp_path


def test_two_server_processes_on_one_postgresql_registry(
    http: httpx.Client, pg_registry: Registry, pg_workdir: Path
) -> None:
    keep, rotated, deleted = (pg_registry.add(p) for p in ("keep", "rot", "gone"))
    with (
        Replica(state=pg_registry.url, workdir=pg_workdir, stack=STACK, name="1") as one,
        Replica(state=pg_registry.url, workdir=pg_workdir, stack=STACK, name="2") as two,
    ):
        keep_token = token(http, one, keep)
        rot_token = token(http, two, rotated)
        gone_token = token(http, one, deleted)
        for replica in (one, two):
            for bearer in (keep_token, rot_token, gone_token):
                assert pull(http, replica, bearer) == 200

        # an apply on some other machine: rotate one connection, delete another
        new_rotated = pg_registry.rotate(rotated)
        pg_registry.delete(deleted)

        for replica in (one, two):
            assert pull(http, replica, rot_token) == 401
            assert pull(http, replica, gone_token) == 401
            assert token_status(http, replica, rotated) == (401, "invalid_client")
            assert token_status(http, replica, deleted) == (401, "invalid_client")
            assert pull(http, replica, keep_token) == 200
            assert pull(http, replica, token(http, replica, new_rotated)) == 200
        # a transcript pulled through either replica is in the one record of disclosures
        for replica in (one, two):
            response = http.get(
                f"{replica.transcripts_url}/HST-2025-000417",
                headers={"Authorization": f"Bearer {keep_token}"},
            )
            assert response.status_code == 200
        released = pg_registry.store.list_disclosures(stack=STACK)
        assert [(d.client_id, d.document_id) for d in released] == [
            (keep.client_id, "HST-2025-000417")
        ] * 2
    assert one.process is None and two.process is None
