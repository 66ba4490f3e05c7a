"""From a ``state:`` URL to an open store.

The URL is the one knob users turn to move from one admin's SQLite file to a
team's PostgreSQL, so its forms follow what people already know from
SQLAlchemy and libpq: three slashes then a relative path, four for an
absolute one; any libpq URL (``sslmode``, ``host=/socket/dir`` …) as is.
Only the backend asked for is imported.
"""

from __future__ import annotations

import os
from pathlib import Path

from erelease.errors import StateError
from erelease.state._common import mask_url
from erelease.state.base import StateStore

__all__ = ["open_store", "sqlite_path"]

_PG_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def sqlite_path(url: str, *, base_dir: str | os.PathLike[str] | None = None) -> Path:
    """The file a ``sqlite:///…`` URL names; relative paths resolve against ``base_dir``."""
    rest = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
    rest = rest.split("?", 1)[0]
    if not rest:
        raise StateError(
            f"the state URL {url!r} names no file; use sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db"
        )
    if rest == ":memory:":
        raise StateError("an in-memory SQLite registry would be lost at exit; name a file")
    path = Path(rest).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def open_store(url: str, *, base_dir: str | os.PathLike[str] | None = None) -> StateStore:
    """Open (creating if needed) the registry at ``url``.

    ``base_dir`` is what a relative ``sqlite:///`` path is relative to (the
    config directory); the current directory when ``None``.
    """
    if url.startswith("sqlite:"):
        from erelease.state.sqlite import SQLiteStore

        return SQLiteStore(sqlite_path(url, base_dir=base_dir))
    if url.startswith(_PG_SCHEMES):
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise StateError(
                "a PostgreSQL state URL needs psycopg, which is not installed",
                hint="pip install 'erelease[postgres]'",
            ) from exc
        from erelease.state.postgres import PostgresStore

        return PostgresStore(url.replace("postgresql+psycopg://", "postgresql://", 1))
    raise StateError(
        f"unsupported state URL {mask_url(url)!r}: use sqlite:///path/to/state.db "
        "or postgresql://user@host/database"
    )
