"""Store fixtures: the same contract tests run against every backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from erelease.state import StateStore, open_store

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty registry of the backend under test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    return str(request.getfixturevalue("pg_db_url"))


@pytest.fixture
def open_stores(store_url: str) -> Iterator[Callable[[], StateStore]]:
    """Opens more stores on the same registry (another process's view); closes them."""
    opened: list[StateStore] = []

    def _open() -> StateStore:
        store = open_store(store_url)
        opened.append(store)
        return store

    yield _open
    for store in reversed(opened):
        store.close()


@pytest.fixture
def store(open_stores: Callable[[], StateStore]) -> StateStore:
    return open_stores()


@pytest.fixture
def other(open_stores: Callable[[], StateStore]) -> StateStore:
    """A second store on the same registry, as another process would open it."""
    return open_stores()
