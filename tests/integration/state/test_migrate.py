"""``state migrate``: a stack moves between SQLite and PostgreSQL, whole and verified."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from erelease.errors import StateError, StateLocked
from erelease.model import CheckResult, Disclosure, TokenRecord
from erelease.state import StateStore, migrate_stack, open_store
from tests.integration.state.records import commit, incoming, outgoing

S = "district-42"


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[StateStore]:
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    yield store
    store.close()


@pytest.fixture
def postgres(pg_db_url: str) -> Iterator[StateStore]:
    store = open_store(pg_db_url)
    yield store
    store.close()


def _fill(store: StateStore) -> None:
    commit(store, S, [outgoing("parchment"), incoming("cfnc", "C" * 16)])
    commit(store, S, [outgoing("ncs", uploadPort=8443)])
    commit(store, S, [], [("outgoing", "ncs")])
    store.record_test_results(
        stack=S,
        results=[CheckResult("incoming/cfnc", "incoming", "cfnc", "failed", "dns", "no host", 7)],
    )
    store.record_disclosure(
        stack=S, disclosure=Disclosure("incoming/cfnc", "C" * 16, "doc-1", "2024-05-01T10:00:00Z")
    )
    store.store_token(stack=S, token=TokenRecord("t" * 64, "C" * 16, "cfnc", "d" * 64, 2e9))
    commit(store, "unrelated", [outgoing("x")])


@pytest.mark.parametrize("direction", ["sqlite->postgres", "postgres->sqlite"])
def test_a_stack_moves_whole(
    direction: str, sqlite: StateStore, postgres: StateStore, tmp_path: Path
) -> None:
    source, target = (sqlite, postgres) if direction.startswith("sqlite") else (postgres, sqlite)
    _fill(source)
    before = source.export_stack(stack=S)
    moved = migrate_stack(source=source, target=target, stack=S)
    assert moved == before.stack  # same lineage and serial
    assert target.export_stack(stack=S) == before
    assert target.list_connections(stack=S)[0].last_test is not None
    assert target.read_stack(stack="unrelated") is None
    # tokens are not copied: clients ask for new ones
    assert target.lookup_token(stack=S, token_sha256="t" * 64, now=1.0) is None
    # the source is untouched and both carry on from the same serial
    assert source.export_stack(stack=S) == before
    assert commit(target, S, [outgoing("after")], expected=3).serial == 4
    assert source.current_lock(stack=S) is None and target.current_lock(stack=S) is None


def test_a_non_empty_target_stack_is_never_overwritten(
    sqlite: StateStore, postgres: StateStore
) -> None:
    _fill(sqlite)
    commit(postgres, S, [outgoing("theirs")])
    before = postgres.export_stack(stack=S)
    with pytest.raises(StateError, match=r"already exists.*not empty.*refusing"):
        migrate_stack(source=sqlite, target=postgres, stack=S)
    assert postgres.export_stack(stack=S) == before


def test_an_empty_target_stack_takes_the_source_lineage(
    sqlite: StateStore, postgres: StateStore
) -> None:
    _fill(postgres)
    sqlite.init_stack(stack=S)
    moved = migrate_stack(source=postgres, target=sqlite, stack=S)
    source = postgres.read_stack(stack=S)
    assert source is not None and moved.lineage == source.lineage


def test_a_missing_or_locked_source_stack(
    sqlite: StateStore, postgres: StateStore, pg_db_url: str
) -> None:
    with pytest.raises(StateError, match="does not exist"):
        migrate_stack(source=postgres, target=sqlite, stack="nothing-here")
    _fill(postgres)
    with psycopg.connect(pg_db_url, autocommit=True) as someone_else:
        someone_else.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"erelease:{S}",))
        with pytest.raises(StateLocked):
            migrate_stack(source=postgres, target=sqlite, stack=S)
    assert sqlite.read_stack(stack=S) is None


def test_a_store_cannot_migrate_into_itself(sqlite: StateStore) -> None:
    with open_store(sqlite.url) as again, pytest.raises(StateError, match="one store"):
        migrate_stack(source=sqlite, target=again, stack=S)


def test_a_caller_may_hold_the_source_lock_already(
    sqlite: StateStore, postgres: StateStore
) -> None:
    _fill(sqlite)
    with sqlite.acquire_lock(stack=S, operation="state migrate"):
        migrate_stack(source=sqlite, target=postgres, stack=S)
    assert postgres.read_stack(stack=S) == sqlite.read_stack(stack=S)
