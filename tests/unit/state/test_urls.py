"""``state:`` URLs: which file or server each form names."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from erelease.errors import StateError
from erelease.state import open_store
from erelease.state.urls import sqlite_path


def test_three_slashes_are_relative_four_absolute() -> None:
    assert sqlite_path("sqlite:///.erelease/state.db") == Path(".erelease/state.db")
    assert sqlite_path("sqlite:////var/lib/erelease/state.db") == Path("/var/lib/erelease/state.db")


def test_relative_paths_resolve_against_the_config_directory() -> None:
    assert sqlite_path("sqlite:///state.db", base_dir="/srv/cfg") == Path("/srv/cfg/state.db")
    assert sqlite_path("sqlite:////abs.db", base_dir="/srv/cfg") == Path("/abs.db")


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:state.db"])
def test_a_sqlite_url_must_name_a_file(url: str) -> None:
    with pytest.raises(StateError, match="names no file"):
        sqlite_path(url)


def test_memory_is_refused() -> None:
    with pytest.raises(StateError, match="in-memory"):
        sqlite_path("sqlite:///:memory:")


def test_unknown_schemes_are_refused_without_the_password() -> None:
    with pytest.raises(StateError, match="unsupported state URL") as err:
        open_store("mysql://admin:hunter2@db/registry")
    assert "hunter2" not in str(err.value)


def test_postgres_without_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StateError, match="psycopg") as err:
        open_store("postgresql://erelease@db/registry")
    assert "pip install 'erelease[postgres]'" in str(err.value)
