"""Tokens issued in one turn of the event loop are committed together, and answered after."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from erelease.errors import StateError
from erelease.model import TokenRecord
from erelease.serve._batch import StoresTokens, TokenBatcher
from erelease.serve._context import ServeContext
from erelease.serve._index import TranscriptIndex
from erelease.serve._throttle import SlidingWindowThrottle
from erelease.settings import Settings
from erelease.state.sqlite import SQLiteStore


class Recorder:
    """A store that records each commit (and can be made to fail)."""

    def __init__(self, fail: bool = False) -> None:
        self.commits: list[list[str]] = []
        self.fail = fail

    def store_tokens(self, *, stack: str, tokens: Sequence[TokenRecord]) -> None:
        if self.fail:
            raise StateError("the registry is gone")
        self.commits.append([t.token_sha256 for t in tokens])

    def find_client(self, **_: Any) -> None:
        return None


def _ctx(store: Any, tmp_path: Path) -> ServeContext:
    throttle = SlidingWindowThrottle(limit=1, window=1)
    return ServeContext(
        settings=Settings(config_dir=tmp_path, stack="s", base_url="http://127.0.0.1/x"),
        store=store,
        stack="s",
        index=TranscriptIndex(tmp_path),
        client_throttle=throttle,
        addr_throttle=throttle,
    )


def _token(name: str) -> TokenRecord:
    return TokenRecord(name, "client", "conn", "d" * 64, 4e9)


def test_requests_of_one_turn_share_a_commit_and_a_lone_one_is_not_delayed(
    tmp_path: Path,
) -> None:
    store = Recorder()
    batcher = TokenBatcher(_ctx(store, tmp_path), store)
    answered: list[str] = []

    async def request(name: str) -> None:
        await batcher.store_token(_token(name))
        answered.append(name)

    async def main() -> None:
        await asyncio.gather(*(request(f"t{i}") for i in range(5)))  # ready together
        await request("lone")

    asyncio.run(main())
    assert store.commits == [["t0", "t1", "t2", "t3", "t4"], ["lone"]]
    assert sorted(answered) == sorted(["t0", "t1", "t2", "t3", "t4", "lone"])
    assert (batcher.commits, batcher.tokens) == (2, 6)


def test_a_failed_commit_fails_every_request_in_it(tmp_path: Path) -> None:
    store = Recorder(fail=True)
    batcher = TokenBatcher(_ctx(store, tmp_path), store)

    async def main() -> list[BaseException | None]:
        results = await asyncio.gather(
            *(batcher.store_token(_token(f"t{i}")) for i in range(3)), return_exceptions=True
        )
        return list(results)

    results = asyncio.run(main())
    assert all(isinstance(r, StateError) for r in results)


def test_a_cancelled_request_does_not_break_the_others(tmp_path: Path) -> None:
    store = Recorder()
    batcher = TokenBatcher(_ctx(store, tmp_path), store)

    async def main() -> None:
        first = asyncio.ensure_future(batcher.store_token(_token("gone")))
        second = asyncio.ensure_future(batcher.store_token(_token("kept")))
        await asyncio.sleep(0)  # both are pending on the flush now
        first.cancel()
        await second
        with pytest.raises(asyncio.CancelledError):
            await first

    asyncio.run(main())
    assert store.commits == [["gone", "kept"]]  # stored all the same: an unused token


def test_sqlite_stores_many_tokens_in_one_commit(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    try:
        assert isinstance(store, StoresTokens)
        store.store_tokens(stack="s", tokens=[_token(f"{i:064x}") for i in range(3)])
        store.store_tokens(stack="s", tokens=[_token(f"{9:064x}")])
        store.store_tokens(stack="s", tokens=[])
        rows = store._conn().execute("SELECT token_sha256 FROM tokens ORDER BY 1").fetchall()
        assert [r[0] for r in rows] == [f"{i:064x}" for i in (0, 1, 2, 9)]
    finally:
        store.close()
