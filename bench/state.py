"""Benchmark: the registry on PostgreSQL against SQLite, in the same run (issue 6).

A team moving to PostgreSQL trades the embedded file for a network round trip
per statement; these rows say what that costs where it matters: committing a
10,000-connection apply in one transaction, reading all of it back (what every
plan does), taking and releasing the stack lock, and the token work ``serve``
does per request (issue a token: find the client, store the token; check a
bearer token: one lookup), whose target is 3,000 a second.

PostgreSQL runs from the ``pgserver`` wheel over a Unix socket with its
default durability (fsync on); SQLite commits an apply with
``synchronous=FULL``. Issued tokens are committed without waiting for a flush
on both (a token lost to a crash costs one new token request). Both run on
this machine and share its CPUs, so PostgreSQL's figures are a floor: a server
across a network adds its round-trip time to every statement.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.common import Row, timed
from erelease.model import ConnectionRecord, TokenRecord
from erelease.state import StateStore, open_store
from tests.fixtures.postgres import LocalPostgres, pgserver_module

RECORDS = 10_000
TOKENS_PER_S = 3_000
THREADS = 4


def _records(n: int) -> list[ConnectionRecord]:
    out: list[ConnectionRecord] = []
    for i in range(n):
        if i % 4 == 0:
            out.append(
                ConnectionRecord(
                    kind="incoming",
                    name=f"provider-{i:05d}",
                    spec={"credentials": f"ref+vault://secret/erelease/incoming/p{i:05d}"},
                    secret_versions={"credentials": 1},
                    outputs={
                        "clientId": f"C{i:015d}",
                        "clientSecretSha256": hashlib.sha256(str(i).encode()).hexdigest(),
                        "tokenUrl": "https://district.example.org/campus/oauth2/token?appName=x",
                        "eTranscriptsUrl": "https://district.example.org/campus/api/campus/"
                        "transcript/eTranscripts",
                    },
                )
            )
            continue
        out.append(
            ConnectionRecord(
                kind="outgoing",
                name=f"vendor-{i:05d}",
                spec={
                    "vendor": "Parchment",
                    "authServer": "https://int-api.vendor.example",
                    "authPath": "/send-library-api/v1/oauth/token",
                    "uploadServer": "https://int-api.vendor.example",
                    "uploadPort": 443,
                    "uploadPath": "/send-library-api/v1/pesc/highschool/transcript/1/3/0",
                    "consumerKey": f"key-{i}",
                    "consumerSecret": f"ref+vault://secret/erelease/v{i % 100}#consumer_secret",
                    "username": f"user{i}@vendor.example",
                    "password": f"ref+vault://secret/erelease/v{i % 100}#password",
                },
                secret_versions={"consumerSecret": 3, "password": 3},
                labels={"vendor": "parchment", "region": f"r{i % 7}"},
            )
        )
    return out


def _commit_all(store: StateStore, stack: str, records: list[ConnectionRecord]) -> None:
    store.commit(
        stack=stack,
        expected_serial=0,
        upserts=records,
        deletes=[],
        actor="bench",
        git_commit=None,
        summary={"create": len(records)},
        changes=[(r.address, "create") for r in records],
    )


def _rate(fn: Callable[[], object], *, seconds: float = 1.5, threads: int = 1) -> float:
    """Calls of ``fn`` per second, from ``threads`` threads for about ``seconds``."""
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def loop(slot: int) -> None:
        while time.perf_counter() < stop:
            fn()
            counts[slot] += 1

    workers = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - start)


def _measure(store: StateStore, records: list[ConnectionRecord]) -> dict[str, float]:
    figures: dict[str, float] = {}
    runs = iter(range(100))
    figures["commit"], _ = timed(
        lambda: _commit_all(store, f"bench-{next(runs)}", records), repeat=2
    )
    figures["list"], listed = timed(lambda: store.list_connections(stack="bench-0"), repeat=3)
    assert len(listed) == len(records)

    def lock_round_trip() -> None:
        store.acquire_lock(stack="bench-0", operation="bench").release()

    figures["lock"] = _rate(lock_round_trip)

    client = records[0]
    secret_digest = str(client.outputs["clientSecretSha256"])
    issued = iter(range(10**9))

    def issue() -> None:
        found = store.find_client(stack="bench-0", client_id=str(client.outputs["clientId"]))
        assert found is not None
        digest = hashlib.sha256(f"token-{next(issued)}".encode()).hexdigest()
        token = TokenRecord(digest, f"C{0:015d}", client.name, secret_digest, 4e9)
        store.store_token(stack="bench-0", token=token)

    figures["issue"] = _rate(issue, threads=THREADS)
    known = hashlib.sha256(b"token-0").hexdigest()

    def check() -> None:
        assert store.lookup_token(stack="bench-0", token_sha256=known, now=1e9) is not None

    figures["lookup"] = _rate(check, threads=THREADS)
    return figures


@contextlib.contextmanager
def _stores() -> Iterator[tuple[StateStore, StateStore | None]]:
    with tempfile.TemporaryDirectory(prefix="erelease-bench-") as tmp:
        sqlite = open_store(f"sqlite:///{Path(tmp) / 'state.db'}")
        if pgserver_module() is None:
            yield sqlite, None
            sqlite.close()
            return
        with LocalPostgres(durable=True) as server:
            postgres = open_store(server.create_database("bench"))
            try:
                yield sqlite, postgres
            finally:
                postgres.close()
                sqlite.close()


def _versus(
    figure: str, pg: dict[str, float] | None, sq: dict[str, float], key: str, *, per_s: bool
) -> Row:
    def fmt(value: float) -> str:
        return f"{value:,.0f}/s" if per_s else f"{value * 1000:,.0f} ms"

    if pg is None:
        return Row(figure, "skipped (pgserver missing)", f"{fmt(sq[key])} SQLite", "", "", None)
    ratio = sq[key] / pg[key] if per_s else pg[key] / sq[key]  # times slower on PostgreSQL
    return Row(
        figure, f"{fmt(pg[key])} PG", f"{fmt(sq[key])} SQLite", f"{ratio:.2f}x slower", "", None
    )


def _serve_row(figure: str, rate: float) -> Row:
    return Row(
        figure,
        f"{rate:,.0f}/s",
        f"{TOKENS_PER_S:,}/s target",
        f"{rate / TOKENS_PER_S:.2f}x",
        f">= {TOKENS_PER_S:,}/s",
        rate >= TOKENS_PER_S,
    )


def run() -> list[Row]:
    records = _records(RECORDS)
    with _stores() as (sqlite, postgres):
        sq = _measure(sqlite, records)
        pg = _measure(postgres, records) if postgres is not None else None
    n = f"{RECORDS:,}"
    rows = [
        _versus(f"commit {n} connections, PostgreSQL vs SQLite", pg, sq, "commit", per_s=False),
        _versus(f"list_connections of {n}, PostgreSQL vs SQLite", pg, sq, "list", per_s=False),
        _versus("lock acquire+release round trips", pg, sq, "lock", per_s=True),
        _serve_row(
            f"serve: issue token (find_client + store_token), SQLite, {THREADS} threads",
            sq["issue"],
        ),
        _serve_row(f"serve: bearer lookup_token, SQLite, {THREADS} threads", sq["lookup"]),
    ]
    if pg is not None:
        rows += [
            _serve_row(f"serve: issue token, PostgreSQL, {THREADS} threads", pg["issue"]),
            _serve_row(f"serve: bearer lookup_token, PostgreSQL, {THREADS} threads", pg["lookup"]),
        ]
    return rows


def main() -> None:
    for row in run():
        status = "" if row.met is None else ("  met" if row.met else "  NOT MET")
        goal = f"; goal {row.goal}" if row.goal else ""
        print(f"{row.figure}: {row.value} (baseline {row.baseline}; {row.ratio}{goal}){status}")


if __name__ == "__main__":
    main()
