"""The state-store contract: what every registry backend must do.

The engine, ``show`` and ``serve`` speak only to :class:`StateStore`; SQLite
(embedded default) and PostgreSQL (shared) implement it, and the same contract
tests run against both. Methods are keyword-only so call sites stay readable
and backends cannot silently swap arguments.

No method ever receives a secret value: connection records carry references,
KV versions and SHA-256 digests of minted client secrets; tokens are stored by
digest only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from erelease.model import (
    CheckResult,
    ConnectionRecord,
    Disclosure,
    HistoryEntry,
    LockInfo,
    StackInfo,
    TokenRecord,
)

__all__ = ["Lock", "StackDump", "StateStore"]


@dataclass
class StackDump:
    """Everything of one stack, for ``state migrate`` (no tokens: they are short-lived)."""

    stack: StackInfo
    connections: list[ConnectionRecord]
    history: list[HistoryEntry]
    disclosures: list[Disclosure] = field(default_factory=list)


class Lock:
    """A held stack lock; a context manager that releases it on exit."""

    def __init__(self, store: StateStore, info: LockInfo) -> None:
        self.store = store
        self.info = info

    def release(self) -> None:
        self.store.release_lock(stack=self.info.stack, lock_id=self.info.lock_id)

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class StateStore(ABC):
    """A registry of applied connections, per stack. See SPEC §5.1."""

    #: the URL it was opened with, with any password masked
    url: str = ""

    # -- stack ---------------------------------------------------------------
    @abstractmethod
    def read_stack(self, *, stack: str) -> StackInfo | None:
        """The stack's lineage and serial, or ``None`` if nothing was ever applied."""

    @abstractmethod
    def init_stack(self, *, stack: str) -> StackInfo:
        """Return the stack, creating it (new UUID lineage, serial 0) if missing."""

    @abstractmethod
    def list_stacks(self) -> list[StackInfo]:
        """Every stack in this store."""

    # -- connections ---------------------------------------------------------
    @abstractmethod
    def list_connections(self, *, stack: str) -> list[ConnectionRecord]:
        """All applied connections of the stack, sorted by (kind, name), with last_test."""

    @abstractmethod
    def get_connection(self, *, stack: str, kind: str, name: str) -> ConnectionRecord | None:
        """One applied connection, or ``None``."""

    @abstractmethod
    def find_client(self, *, stack: str, client_id: str) -> ConnectionRecord | None:
        """The incoming connection whose ``outputs['clientId']`` is ``client_id``."""

    @abstractmethod
    def commit(
        self,
        *,
        stack: str,
        expected_serial: int,
        upserts: Sequence[ConnectionRecord],
        deletes: Sequence[tuple[str, str]],
        actor: str,
        git_commit: str | None,
        summary: dict[str, int],
        changes: Sequence[tuple[str, str]],
    ) -> StackInfo:
        """Apply all changes in one transaction; serial + 1; append a history row.

        Raises :class:`~erelease.errors.StateConflict` if the stack's serial is
        not ``expected_serial`` (someone else applied). Deleting or upserting an
        incoming connection whose client ID or secret digest changed drops its
        issued tokens in the same transaction. Nothing is written on failure.
        """

    @abstractmethod
    def record_test_results(self, *, stack: str, results: Sequence[CheckResult]) -> None:
        """Store each result as its connection's last test (unknown addresses ignored)."""

    @abstractmethod
    def history(self, *, stack: str, limit: int | None = None) -> list[HistoryEntry]:
        """Applies, newest first."""

    # -- locks ---------------------------------------------------------------
    @abstractmethod
    def acquire_lock(self, *, stack: str, operation: str, timeout: float = 0.0) -> Lock:
        """Take the stack lock, waiting up to ``timeout`` seconds.

        Raises :class:`~erelease.errors.StateLocked` naming the holder.
        A lock whose holder is provably dead is taken over.
        """

    @abstractmethod
    def release_lock(self, *, stack: str, lock_id: str) -> None:
        """Release a lock this process holds (no error if already gone)."""

    @abstractmethod
    def current_lock(self, *, stack: str) -> LockInfo | None:
        """Who holds the stack lock now, if anyone."""

    @abstractmethod
    def force_unlock(self, *, stack: str, lock_id: str) -> LockInfo:
        """Break a lock by its ID (``state unlock``); StateError if no such lock."""

    # -- serve: tokens and disclosures ---------------------------------------
    @abstractmethod
    def store_token(self, *, stack: str, token: TokenRecord) -> None:
        """Remember an issued bearer token by its digest."""

    @abstractmethod
    def lookup_token(self, *, stack: str, token_sha256: str, now: float) -> TokenRecord | None:
        """The token, if unexpired AND its connection still exists with the same
        client ID and client-secret digest (so delete/rotate revoke at once)."""

    @abstractmethod
    def purge_tokens(self, *, stack: str, now: float) -> int:
        """Forget expired tokens; return how many."""

    @abstractmethod
    def record_disclosure(self, *, stack: str, disclosure: Disclosure) -> None:
        """Append one released transcript to the record of disclosures."""

    @abstractmethod
    def list_disclosures(self, *, stack: str, since: str | None = None) -> list[Disclosure]:
        """Disclosures, oldest first, optionally from ``since`` (ISO 8601) on."""

    # -- migration -----------------------------------------------------------
    @abstractmethod
    def export_stack(self, *, stack: str) -> StackDump:
        """Everything of one stack (StateError if it does not exist)."""

    @abstractmethod
    def import_stack(self, *, dump: StackDump) -> None:
        """Write a dump as a new stack, keeping lineage and serial.

        Refuses (StateError) if the target stack exists and is not empty.
        """

    @abstractmethod
    def close(self) -> None:
        """Release connections and any held locks."""

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
