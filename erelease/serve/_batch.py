"""Store the tokens issued in one turn of the event loop with one registry commit.

Every token must be in the registry before it is handed out (another replica
may be asked to honour it a moment later), so the Token URL commits once per
token. On SQLite a commit is the expensive part of issuing one: the WAL's
write lock, a few pages appended to the WAL, and another process's commit
invalidating this one's page cache. Requests that arrive together (several
connections readable in one turn of the loop) are therefore stored together:
each request awaits its token's commit, the first one schedules a flush to
run once the loop has started every request that is ready, and the flush
commits all their tokens at once, then lets each request answer.

Nothing is delayed beyond the loop turn in progress: a lone request is
committed as soon as it awaits, as before. A failed commit fails every
request of that commit (each answers 503, as a lone one would). Only a store
with ``store_tokens`` (SQLite) is written this way; any other gets one
``store_token`` per request, directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from erelease.model import TokenRecord
from erelease.serve._context import ServeContext

__all__ = ["StoresTokens", "TokenBatcher"]


@runtime_checkable
class StoresTokens(Protocol):
    """A store that commits several tokens at once."""

    def store_tokens(self, *, stack: str, tokens: Sequence[TokenRecord]) -> None: ...


class TokenBatcher:
    """Collects the tokens of one loop turn and commits them together."""

    def __init__(self, ctx: ServeContext, store: StoresTokens) -> None:
        self.ctx = ctx
        self.store = store
        self._pending: list[tuple[TokenRecord, asyncio.Future[None]]] = []
        self.commits = 0  # how many commits, and how many tokens they held
        self.tokens = 0

    async def store_token(self, token: TokenRecord) -> None:
        """Return once ``token`` is committed; raise what the commit raised."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((token, done))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        await done

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self.commits += 1
        self.tokens += len(batch)
        try:
            with self.ctx.writing():
                self.store.store_tokens(stack=self.ctx.stack, tokens=[t for t, _ in batch])
        except Exception as exc:  # every request of the commit learns why it failed
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
        else:
            for _, done in batch:
                if not done.done():  # a request cancelled meanwhile has nobody to answer
                    done.set_result(None)
