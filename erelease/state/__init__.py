"""The registry of applied connections: where it lives, and moving it elsewhere.

Everything above this package speaks to a :class:`StateStore`; which backend
serves it is decided once, here, from the ``state:`` URL (SPEC §4):

- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` — the
  embedded default, one file per config directory;
- ``postgresql://…`` (or ``postgres://…``) — one shared database for many CI
  runners and ``serve`` replicas. psycopg is imported only when asked for, so
  the SQLite-only install needs nothing more.
"""

from __future__ import annotations

from erelease.state._common import mask_url
from erelease.state.base import Lock, StackDump, StateStore
from erelease.state.migrate import migrate_stack
from erelease.state.urls import open_store

__all__ = ["Lock", "StackDump", "StateStore", "mask_url", "migrate_stack", "open_store"]
