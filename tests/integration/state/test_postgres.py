"""What only the shared PostgreSQL registry promises: its schema, its locks, its faults."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from erelease.errors import StateError, StateLocked
from erelease.state import open_store
from erelease.state.postgres import PostgresStore
from tests.fixtures.postgres import LocalPostgres
from tests.integration.state.records import commit, outgoing

S = "district-42"


@pytest.fixture
def pg(pg_db_url: str) -> Any:
    store = open_store(pg_db_url)
    assert isinstance(store, PostgresStore)
    yield store
    store.close()


def _sql(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


def test_everything_lives_in_schema_erelease(pg: PostgresStore, pg_db_url: str) -> None:
    tables = _sql(
        pg_db_url,
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 2",
    )
    assert {schema for schema, _ in tables} == {"erelease"}
    assert {name for _, name in tables} >= {"stacks", "connections", "history", "locks", "tokens"}
    assert _sql(pg_db_url, "SELECT version FROM erelease.schema_migrations") == [(1,)]


def test_many_first_opens_at_once_migrate_once(pg_db_url: str) -> None:
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            open_store(pg_db_url).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _sql(pg_db_url, "SELECT count(*) FROM erelease.schema_migrations") == [(1,)]


def test_the_lock_is_an_advisory_lock_keyed_by_stack(pg: PostgresStore, pg_db_url: str) -> None:
    with pg.acquire_lock(stack=S, operation="apply"):
        keys = _sql(
            pg_db_url,
            "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted",
        )
        expected = _sql(pg_db_url, "SELECT hashtextextended(%s, 0)", (f"erelease:{S}",))
        assert [k for (k,) in keys] == [expected[0][0] & 0xFFFFFFFFFFFFFFFF]
    assert _sql(pg_db_url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]


def test_a_holder_without_a_lock_row_is_still_named(pg: PostgresStore, pg_db_url: str) -> None:
    with psycopg.connect(pg_db_url, autocommit=True, application_name="hand-made") as conn:
        conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"erelease:{S}",))
        with pytest.raises(StateLocked, match=r"hand-made.*no lock record"):
            pg.acquire_lock(stack=S, operation="apply")
    pg.acquire_lock(stack=S, operation="apply").release()


def test_a_lock_row_left_by_a_dead_holder_is_cleared(pg: PostgresStore, pg_db_url: str) -> None:
    _sql(
        pg_db_url,
        "INSERT INTO erelease.locks VALUES (%s, 'dead-lock', 'ci', 'runner-3', 42, 'apply', "
        "'2024-01-01T00:00:00Z', 0)",
        (S,),
    )
    assert pg.current_lock(stack=S) is None  # nobody holds the advisory lock
    with pg.acquire_lock(stack=S, operation="apply") as lock:
        assert pg.current_lock(stack=S) == lock.info


def test_losing_the_lock_connection_writes_nothing(pg: PostgresStore, pg_db_url: str) -> None:
    commit(pg, S, [outgoing("a")])
    lock = pg.acquire_lock(stack=S, operation="apply")
    _sql(pg_db_url, "SELECT pg_terminate_backend(backend_pid) FROM erelease.locks")
    with pytest.raises(StateError, match=r"lost the connection holding the lock.*nothing was"):
        commit(pg, S, [outgoing("b")], [("outgoing", "a")])
    info = pg.read_stack(stack=S)
    assert info is not None and info.serial == 1
    assert [r.name for r in pg.list_connections(stack=S)] == ["a"]
    other = open_store(pg_db_url)
    with other.acquire_lock(stack=S, operation="apply", timeout=5):
        commit(other, S, [outgoing("b")])
    other.close()
    lock.release()  # the connection is gone already: no error


def test_a_dropped_pooled_connection_is_replaced(pg: PostgresStore, pg_db_url: str) -> None:
    commit(pg, S, [outgoing("a")])
    assert len(pg.list_connections(stack=S)) == 1
    _sql(
        pg_db_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    assert len(pg.list_connections(stack=S)) == 1
    assert commit(pg, S, [outgoing("b")]).serial == 2


def test_serialization_failures_are_retried(pg: PostgresStore) -> None:
    calls: list[int] = []

    def flaky(cur: Any) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise psycopg.errors.SerializationFailure("could not serialize access")
        return "done"

    assert pg._run("commit", flaky) == "done"
    assert len(calls) == 3

    def hopeless(cur: Any) -> str:
        raise psycopg.errors.SerializationFailure("could not serialize access")

    with pytest.raises(StateError, match=r"serialization failure.*nothing was written"):
        pg._run("commit", hopeless)


def test_an_unreachable_server(tmp_path: Any) -> None:
    with pytest.raises(StateError) as err:
        open_store("postgresql://erelease:hunter2@127.0.0.1:1/registry?connect_timeout=3")
    message = str(err.value)
    assert "cannot reach PostgreSQL at postgresql://erelease:***@127.0.0.1:1/registry" in message
    assert "Connection refused" in message and "hunter2" not in message


def test_a_wrong_password(pg_server: LocalPostgres, pg_db_url: str) -> None:
    pg_server.add_password_user("pw_user", "right-password")
    database = pg_db_url.split("/")[3].split("?")[0]
    url = pg_server.database_url(database, user="pw_user", password="wrong-password")
    with pytest.raises(StateError, match="authentication failed") as err:
        open_store(url)
    assert "wrong-password" not in str(err.value) and "pw_user:***@" in str(err.value)


def test_a_missing_database(pg_server: LocalPostgres) -> None:
    with pytest.raises(StateError, match='database "nowhere" does not exist'):
        open_store(pg_server.database_url("nowhere"))


def test_a_user_without_create_rights(pg_server: LocalPostgres, pg_db_url: str) -> None:
    pg_server.execute('CREATE ROLE "no_create" LOGIN')
    database = pg_db_url.split("/")[3].split("?")[0]
    pg_server.execute(f'REVOKE CREATE ON DATABASE "{database}" FROM PUBLIC')
    with pytest.raises(StateError, match="permission denied"):
        open_store(pg_server.database_url(database, user="no_create"))


def test_a_schema_from_a_newer_erelease_is_refused(pg: PostgresStore, pg_db_url: str) -> None:
    _sql(pg_db_url, "INSERT INTO erelease.schema_migrations VALUES (99, 'future', 'x')")
    with pytest.raises(StateError, match=r"schema version 99.*upgrade erelease"):
        open_store(pg_db_url)
