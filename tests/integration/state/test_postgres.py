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


def test_state_unlock_breaks_a_live_holders_lock(pg: PostgresStore, pg_db_url: str) -> None:
    """A runner whose session the server still thinks alive (a hung job, a cut-off
    host) is the one case a lock outlives its holder: ``state unlock`` must end it,
    and the holder — whose commits run on that session — can write nothing more."""
    commit(pg, S, [outgoing("a")])
    holder = open_store(pg_db_url)
    try:
        lock = holder.acquire_lock(stack=S, operation="apply")
        broken = pg.force_unlock(stack=S, lock_id=lock.info.lock_id)
        assert broken == lock.info
        assert pg.current_lock(stack=S) is None
        with (
            pg.acquire_lock(stack=S, operation="apply", timeout=0),
            pytest.raises(StateError, match=r"lost the connection holding the lock"),
        ):
            commit(holder, S, [outgoing("b")])
        info = pg.read_stack(stack=S)
        assert info is not None and info.serial == 1
        assert [r.name for r in pg.list_connections(stack=S)] == ["a"]
        lock.release()  # its session is gone: no error
    finally:
        holder.close()


def test_state_unlock_needs_the_right_to_end_the_holders_session(
    pg_server: LocalPostgres, pg_db_url: str
) -> None:
    database = pg_db_url.split("/")[3].split("?")[0]
    pg_server.execute('CREATE ROLE "bystander" LOGIN')
    pg_server.execute(f'GRANT ALL ON DATABASE "{database}" TO bystander')
    owner = open_store(pg_db_url)  # the superuser: creates the schema, holds the lock
    try:
        pg_server.execute("GRANT ALL ON SCHEMA erelease TO bystander", url=pg_db_url)
        pg_server.execute("GRANT ALL ON ALL TABLES IN SCHEMA erelease TO bystander", url=pg_db_url)
        lock = owner.acquire_lock(stack=S, operation="apply")
        with (
            open_store(pg_server.database_url(database, user="bystander")) as weak,
            pytest.raises(StateError, match="permission denied; nothing changed"),
        ):
            weak.force_unlock(stack=S, lock_id=lock.info.lock_id)
        assert owner.current_lock(stack=S) == lock.info
        lock.release()
    finally:
        owner.close()


@pytest.mark.parametrize(
    ("url", "password"),
    [
        ("postgresql://erelease@127.0.0.1:1/r?password=in-the-query", "in-the-query"),
        ("postgresql://erelease:raw#hash@127.0.0.1:1/r", "raw#hash"),
        ("postgresql://erelease:raw?query@127.0.0.1:1/r", "raw?query"),
        ("postgresql://erelease:p%40ss-encoded@127.0.0.1:1/r", "p%40ss-encoded"),
        ("host=127.0.0.1 port=1 password=keyword-form", "keyword-form"),
        ("postgresql://erelease:[bracket@127.0.0.1:1/r", "[bracket"),
    ],
)
def test_no_form_of_a_password_in_the_url_is_ever_printed(url: str, password: str) -> None:
    with pytest.raises(StateError) as err:
        open_store(url)  # nothing listens on port 1: refused at once
    assert password not in str(err.value) and password not in (err.value.hint or "")
    assert "***" in str(err.value) or "cannot be parsed" in str(err.value)


def test_the_wrong_password_in_the_query_is_masked(
    pg_server: LocalPostgres, pg_db_url: str
) -> None:
    pg_server.add_password_user("qp_user", "right-password")
    database = pg_db_url.split("/")[3].split("?")[0]
    url = f"postgresql://qp_user@/{database}?host={pg_server.data_dir}&password=wrong-in-query"
    with pytest.raises(StateError, match="authentication failed") as err:
        open_store(url)
    assert "wrong-in-query" not in str(err.value) and "password=***" in str(err.value)


def test_sessions_are_set_up_after_login_not_in_the_startup_packet(
    pg: PostgresStore, pg_db_url: str
) -> None:
    """``search_path`` and the server-side keepalives are SET once logged in: a
    session-mode PgBouncer refuses untracked startup ``options``, and the keepalives
    are what frees the lock of a runner that vanished without closing its socket."""
    settings = "SELECT name, setting, source FROM pg_settings WHERE name = ANY(%s) ORDER BY name"
    names = ["search_path", "tcp_keepalives_count", "tcp_keepalives_idle"]
    with pg.acquire_lock(stack=S, operation="apply") as lock:
        conn = pg._held[lock.info.lock_id].conn
        assert "options" not in conn.info.get_parameters()
        rows = conn.execute(settings, (names,)).fetchall()
    assert [(n, src) for n, _, src in rows] == [(n, "session") for n in names]
    assert rows[0][1] == "erelease"
    # a URL that sets the keepalives itself keeps them
    own = open_store(pg_db_url + "&options=-c%20tcp_keepalives_idle%3D99")
    try:
        with own.acquire_lock(stack=S, operation="apply") as lock:
            conn = own._held[lock.info.lock_id].conn  # type: ignore[attr-defined]
            got = conn.execute("SELECT source FROM pg_settings WHERE name = 'tcp_keepalives_idle'")
            assert got.fetchone() == ("client",)
    finally:
        own.close()
