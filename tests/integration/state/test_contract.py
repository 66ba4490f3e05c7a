"""The state-store contract, run unchanged against SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from erelease.errors import StateConflict, StateError, StateLocked
from erelease.model import CheckResult, Disclosure, LockInfo, Secret, TokenRecord
from erelease.state import StateStore
from tests.integration.state.records import commit, incoming, outgoing

S = "district-42"


# -- stack -------------------------------------------------------------------


def test_a_new_store_has_no_stacks(store: StateStore) -> None:
    assert store.read_stack(stack=S) is None
    assert store.list_stacks() == []
    assert store.list_connections(stack=S) == []
    assert store.history(stack=S) == []


def test_lineage_is_fixed_at_creation(
    store: StateStore, open_stores: Callable[[], StateStore]
) -> None:
    first = store.init_stack(stack=S)
    assert first.serial == 0 and len(first.lineage) == 36
    assert store.init_stack(stack=S) == first
    commit(store, S, [outgoing("parchment")])
    reopened = open_stores().read_stack(stack=S)
    assert reopened is not None
    assert reopened.lineage == first.lineage and reopened.serial == 1
    assert store.list_stacks() == [reopened]


def test_each_commit_adds_one_to_the_serial_and_a_history_row(store: StateStore) -> None:
    one = commit(store, S, [outgoing("parchment"), incoming("cfnc", "C" * 16)])
    assert one.serial == 1
    two = commit(store, S, [outgoing("parchment", uploadPort=8443)], [("incoming", "cfnc")])
    assert two.serial == 2 and two.lineage == one.lineage
    history = store.history(stack=S)
    assert [h.serial for h in history] == [2, 1]
    assert history[0].actor == "tester" and history[0].git_commit == "abc123"
    assert dict(history[0].summary) == {"create": 1, "delete": 1}
    assert history[0].changes == (("outgoing/parchment", "create"), ("incoming/cfnc", "delete"))
    assert [h.serial for h in store.history(stack=S, limit=1)] == [2]
    [record] = store.list_connections(stack=S)
    assert record.spec["uploadPort"] == 8443


def test_records_round_trip(store: StateStore) -> None:
    record = outgoing("parchment", nested={"a": [1, 2.5, None, True]}, text="é ✓")
    record.protect = True
    commit(store, S, [record])
    got = store.get_connection(stack=S, kind="outgoing", name="parchment")
    assert got is not None
    assert got.created_at and got.updated_at
    assert replace(got, created_at="", updated_at="") == record
    assert store.get_connection(stack=S, kind="incoming", name="parchment") is None


def test_update_keeps_created_at_and_moves_updated_at(store: StateStore) -> None:
    commit(store, S, [outgoing("parchment")])
    before = store.get_connection(stack=S, kind="outgoing", name="parchment")
    time.sleep(0.01)
    commit(store, S, [outgoing("parchment", uploadPort=1)])
    after = store.get_connection(stack=S, kind="outgoing", name="parchment")
    assert before is not None and after is not None
    assert after.created_at == before.created_at
    assert after.updated_at > before.updated_at


def test_connections_are_sorted_by_kind_then_name(store: StateStore) -> None:
    names = ["b", "a-b", "ab", "a0", "a-c", "a"]
    commit(store, S, [outgoing(n) for n in names] + [incoming("z", "Z" * 16)])
    listed = [(r.kind, r.name) for r in store.list_connections(stack=S)]
    assert listed == [("incoming", "z")] + [("outgoing", n) for n in sorted(names)]


def test_find_client_by_client_id(store: StateStore) -> None:
    commit(store, S, [incoming("cfnc", "ABCDEFGH12345678"), incoming("other", "Z" * 16)])
    found = store.find_client(stack=S, client_id="ABCDEFGH12345678")
    assert found is not None and found.name == "cfnc"
    assert store.find_client(stack=S, client_id="nope") is None
    assert store.find_client(stack="elsewhere", client_id="ABCDEFGH12345678") is None


def test_commit_creates_a_missing_stack_only_at_serial_zero(store: StateStore) -> None:
    with pytest.raises(StateConflict):
        commit(store, S, [outgoing("x")], expected=3)
    assert store.read_stack(stack=S) is None
    assert commit(store, S, [outgoing("x")], expected=0).serial == 1


# -- atomicity and conflicts -------------------------------------------------


def _snapshot(store: StateStore) -> tuple[object, ...]:
    return (store.read_stack(stack=S), store.list_connections(stack=S), store.history(stack=S))


def test_a_stale_serial_conflicts_and_writes_nothing(store: StateStore, other: StateStore) -> None:
    commit(store, S, [outgoing("a")])
    commit(other, S, [outgoing("b")])  # someone else applied meanwhile
    before = _snapshot(store)
    with pytest.raises(StateConflict, match=r"serial 2.*expected serial 1"):
        commit(store, S, [outgoing("c")], [("outgoing", "a")], expected=1)
    assert _snapshot(store) == before


def test_a_record_that_cannot_be_stored_leaves_nothing(store: StateStore) -> None:
    commit(store, S, [outgoing("a")])
    before = _snapshot(store)
    bad = outgoing("bad", when={1, 2})
    with pytest.raises(StateError, match="outgoing/bad"):
        commit(store, S, [outgoing("b"), bad], [("outgoing", "a")])
    assert _snapshot(store) == before


@pytest.mark.parametrize("where", ["value", "key"])
def test_a_nul_character_is_refused_alike_by_both_backends(store: StateStore, where: str) -> None:
    """PostgreSQL's jsonb cannot hold U+0000; SQLite could, but then that stack could
    never move to PostgreSQL. Both refuse it, clearly, and write nothing."""
    commit(store, S, [outgoing("a")])
    before = _snapshot(store)
    spec = {"consumerKey": "ck\x00"} if where == "value" else {"odd\x00key": "x"}
    with pytest.raises(StateError, match=r"outgoing/bad spec: a value holds a NUL character"):
        commit(store, S, [outgoing("bad", **spec)])
    assert _snapshot(store) == before
    # an escaped backslash before "u0000" is text, not a NUL
    assert commit(store, S, [outgoing("b", consumerKey="c\\u0000k")]).serial == 2
    got = store.get_connection(stack=S, kind="outgoing", name="b")
    assert got is not None and got.spec["consumerKey"] == "c\\u0000k"


def test_a_failure_inside_the_transaction_rolls_everything_back(store: StateStore) -> None:
    commit(store, S, [outgoing("a"), incoming("x", "SAMECLIENTID0001")])
    before = _snapshot(store)
    # the second upsert breaks the uniqueness of client IDs, after the delete
    # and the first upsert have been written inside the transaction
    with pytest.raises(StateError):
        commit(
            store,
            S,
            [outgoing("b"), incoming("y", "SAMECLIENTID0001")],
            [("outgoing", "a")],
        )
    assert _snapshot(store) == before


def test_a_secret_value_is_never_stored(store: StateStore) -> None:
    with pytest.raises(StateError) as err:
        commit(store, S, [outgoing("a", password=Secret("hunter2-canary"))])
    assert "hunter2-canary" not in str(err.value)
    assert store.read_stack(stack=S) is None


# -- test results --------------------------------------------------------------


def _result(address: str, status: str = "valid") -> CheckResult:
    kind, name = address.split("/")
    return CheckResult(address, kind, name, status, "ok", "fine", 12)  # type: ignore[arg-type]


def test_last_test_result_per_connection(store: StateStore) -> None:
    commit(store, S, [outgoing("a"), incoming("b", "B" * 16)])
    store.record_test_results(
        stack=S, results=[_result("outgoing/a", "failed"), _result("outgoing/ghost")]
    )
    store.record_test_results(stack=S, results=[_result("incoming/b")])
    store.record_test_results(stack=S, results=[_result("outgoing/a")])
    tests = {r.address: r.last_test for r in store.list_connections(stack=S)}
    assert tests["outgoing/a"] is not None and tests["outgoing/a"].status == "valid"
    assert tests["outgoing/a"].checked_at
    assert tests["incoming/b"] is not None and tests["incoming/b"].duration_ms == 12
    commit(store, S, [], [("outgoing", "a")])
    commit(store, S, [outgoing("a")])
    recreated = store.get_connection(stack=S, kind="outgoing", name="a")
    assert recreated is not None and recreated.last_test is None


# -- locks ---------------------------------------------------------------------


def test_contention_names_the_holder(store: StateStore, other: StateStore) -> None:
    held = store.acquire_lock(stack=S, operation="apply")
    with pytest.raises(StateLocked) as err:
        other.acquire_lock(stack=S, operation="apply")
    info = held.info
    assert err.value.exit_code == 4
    assert isinstance(err.value.lock, LockInfo) and err.value.lock.lock_id == info.lock_id
    message = str(err.value)
    for part in (info.holder, info.host, str(info.pid), "apply", info.since, info.lock_id):
        assert part in message
    assert other.current_lock(stack=S) == info
    held.release()
    assert other.current_lock(stack=S) is None
    other.acquire_lock(stack=S, operation="apply").release()


def test_lock_timeout_waits_for_a_release(store: StateStore, other: StateStore) -> None:
    held = store.acquire_lock(stack=S, operation="apply")
    timer = threading.Timer(0.4, held.release)
    timer.start()
    start = time.monotonic()
    with other.acquire_lock(stack=S, operation="apply", timeout=10) as lock:
        assert time.monotonic() - start >= 0.3
        assert other.current_lock(stack=S) == lock.info
    timer.join()
    assert store.current_lock(stack=S) is None


def test_lock_timeout_gives_up(store: StateStore, other: StateStore) -> None:
    with store.acquire_lock(stack=S, operation="apply"):
        start = time.monotonic()
        with pytest.raises(StateLocked):
            other.acquire_lock(stack=S, operation="plan", timeout=0.3)
        assert time.monotonic() - start >= 0.3


def test_force_unlock_by_id(store: StateStore, other: StateStore) -> None:
    held = store.acquire_lock(stack=S, operation="apply")
    with pytest.raises(StateError, match="current lock ID is " + held.info.lock_id):
        other.force_unlock(stack=S, lock_id="not-the-id")
    assert other.force_unlock(stack=S, lock_id=held.info.lock_id) == held.info
    with pytest.raises(StateError, match="not locked"):
        other.force_unlock(stack=S, lock_id=held.info.lock_id)
    # broken means broken: the next apply takes the lock at once, on both backends
    other.acquire_lock(stack=S, operation="apply").release()
    held.release()  # already gone: no error


def test_close_releases_held_locks(
    open_stores: Callable[[], StateStore], other: StateStore
) -> None:
    first = open_stores()
    first.acquire_lock(stack=S, operation="apply")
    first.close()
    other.acquire_lock(stack=S, operation="apply").release()


def test_commit_under_the_lock(store: StateStore) -> None:
    with store.acquire_lock(stack=S, operation="apply"):
        assert commit(store, S, [outgoing("a")]).serial == 1
    assert commit(store, S, [outgoing("b")]).serial == 2


# -- tokens and disclosures ----------------------------------------------------


def _token(name: str = "t1", client: str = "C" * 16, digest: str = "d" * 64) -> TokenRecord:
    return TokenRecord(name * 8, client, "incoming/cfnc", digest, expires_at=2000.0)


def test_a_token_is_valid_while_its_connection_is(store: StateStore) -> None:
    commit(store, S, [incoming("cfnc", "C" * 16), outgoing("a")])
    store.store_token(stack=S, token=_token())
    assert store.lookup_token(stack=S, token_sha256="t1" * 8, now=1000.0) == _token()
    assert store.lookup_token(stack=S, token_sha256="t1" * 8, now=2000.0) is None  # expired
    assert store.lookup_token(stack=S, token_sha256="t2" * 8, now=1000.0) is None
    assert store.lookup_token(stack="other", token_sha256="t1" * 8, now=1000.0) is None
    commit(store, S, [outgoing("a", uploadPort=1)])  # unrelated change
    assert store.lookup_token(stack=S, token_sha256="t1" * 8, now=1000.0) is not None


def test_deleting_a_connection_revokes_its_tokens(store: StateStore) -> None:
    commit(store, S, [incoming("cfnc", "C" * 16)])
    store.store_token(stack=S, token=_token())
    commit(store, S, [], [("incoming", "cfnc")])
    assert store.lookup_token(stack=S, token_sha256="t1" * 8, now=1000.0) is None
    commit(store, S, [incoming("cfnc", "C" * 16)])  # same client back: the token stays dead
    assert store.lookup_token(stack=S, token_sha256="t1" * 8, now=1000.0) is None


def test_rotating_the_secret_revokes_its_tokens(store: StateStore, other: StateStore) -> None:
    commit(store, S, [incoming("cfnc", "C" * 16)])
    store.store_token(stack=S, token=_token())
    assert other.lookup_token(stack=S, token_sha256="t1" * 8, now=1000.0) is not None
    commit(store, S, [incoming("cfnc", "C" * 16, digest="e" * 64)])
    assert other.lookup_token(stack=S, token_sha256="t1" * 8, now=1000.0) is None
    store.store_token(stack=S, token=_token("t3", digest="e" * 64))
    assert other.lookup_token(stack=S, token_sha256="t3" * 8, now=1000.0) is not None


def test_a_token_for_a_mismatched_secret_is_refused(store: StateStore) -> None:
    commit(store, S, [incoming("cfnc", "C" * 16)])
    store.store_token(stack=S, token=_token(digest="f" * 64))
    assert store.lookup_token(stack=S, token_sha256="t1" * 8, now=1000.0) is None


def test_purge_forgets_expired_tokens(store: StateStore) -> None:
    commit(store, S, [incoming("cfnc", "C" * 16)])
    store.store_token(stack=S, token=_token("t1"))
    store.store_token(stack=S, token=replace(_token("t2"), expires_at=500.0))
    assert store.purge_tokens(stack=S, now=1000.0) == 1
    assert store.purge_tokens(stack=S, now=1000.0) == 0
    assert store.lookup_token(stack=S, token_sha256="t1" * 8, now=1000.0) is not None


def test_disclosures_are_kept_in_order(store: StateStore) -> None:
    times = ["2024-05-01T10:00:00Z", "2024-05-01T09:00:00Z", "2024-05-02T08:00:00Z"]
    for i, when in enumerate(times):
        store.record_disclosure(
            stack=S, disclosure=Disclosure("incoming/cfnc", "C" * 16, f"doc{i}", when, "10.0.0.9")
        )
    listed = store.list_disclosures(stack=S)
    assert [d.document_id for d in listed] == ["doc1", "doc0", "doc2"]
    assert listed[0] == Disclosure("incoming/cfnc", "C" * 16, "doc1", times[1], "10.0.0.9")
    since = store.list_disclosures(stack=S, since="2024-05-01T10:00:00Z")
    assert [d.document_id for d in since] == ["doc0", "doc2"]
    assert store.list_disclosures(stack="other") == []


# -- stacks share a store ------------------------------------------------------


def test_two_stacks_neither_see_nor_block_each_other(store: StateStore, other: StateStore) -> None:
    with store.acquire_lock(stack="east", operation="apply"):
        with other.acquire_lock(stack="west", operation="apply"):
            commit(store, "east", [incoming("cfnc", "E" * 16)])
            commit(other, "west", [outgoing("parchment")], expected=0)
            commit(other, "west", [outgoing("ncs")])
        assert other.current_lock(stack="west") is None
        assert other.current_lock(stack="east") is not None
    assert [r.name for r in store.list_connections(stack="east")] == ["cfnc"]
    assert [r.name for r in store.list_connections(stack="west")] == ["ncs", "parchment"]
    assert [h.serial for h in store.history(stack="west")] == [2, 1]
    assert [s.stack for s in store.list_stacks()] == ["east", "west"]
    east, west = store.read_stack(stack="east"), store.read_stack(stack="west")
    assert east is not None and west is not None and east.lineage != west.lineage
    store.store_token(stack="east", token=_token(client="E" * 16))
    assert store.lookup_token(stack="west", token_sha256="t1" * 8, now=1.0) is None
    assert store.find_client(stack="west", client_id="E" * 16) is None
