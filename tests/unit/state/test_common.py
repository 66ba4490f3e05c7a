"""Row encoding, URL masking and liveness checks shared by both backends."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erelease.errors import StateError
from erelease.model import ConnectionRecord, Secret
from erelease.state._common import (
    Holder,
    decode_connection,
    encode_connection,
    encode_json,
    mask_url,
    parse_address,
    pid_alive,
    process_start,
)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:hunter2@db:5432/r", "postgresql://u:***@db:5432/r"),
        ("postgresql://u:p%40ss@db/r?sslmode=require", "postgresql://u:***@db/r?sslmode=require"),
        ("postgresql://u@db/r", "postgresql://u@db/r"),
        ("postgresql:///r?host=/run/pg", "postgresql:///r?host=/run/pg"),
        ("sqlite:///state.db", "sqlite:///state.db"),
    ],
)
def test_passwords_are_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize("value", [{1, 2}, Secret("x"), math.nan, object(), b"bytes"])
def test_only_plain_json_is_stored(value: object) -> None:
    with pytest.raises(StateError, match="not plain JSON"):
        encode_json({"field": value}, what="outgoing/x spec")


#: any text but U+0000, which PostgreSQL's jsonb cannot hold and so neither backend stores
texts = st.text(st.characters(blacklist_characters="\x00"))

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | texts
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=10,
)


@given(spec=st.dictionaries(texts, json_values, max_size=5))
def test_a_record_survives_encoding(spec: dict[str, object]) -> None:
    record = ConnectionRecord(
        kind="outgoing", name="x", spec=spec, labels={"a": "b"}, outputs={"clientId": "C"}
    )
    row = encode_connection("s", record, now="2024-01-01T00:00:00Z")
    decoded = decode_connection(row[1:10] + (None,) * 5)
    assert decoded.spec == spec and decoded.labels == {"a": "b"}
    assert decoded.created_at == decoded.updated_at == "2024-01-01T00:00:00Z"
    assert row[10] == "C" and row[11] is None


def test_an_unknown_kind_is_refused() -> None:
    record = ConnectionRecord(kind="sideways", name="x", spec={})  # type: ignore[arg-type]
    with pytest.raises(StateError, match="unknown kind"):
        encode_connection("s", record, now="t")


def test_addresses() -> None:
    assert parse_address("incoming/cfnc") == ("incoming", "cfnc")
    assert parse_address("cfnc") is None
    assert parse_address("sideways/x") is None


def test_liveness_of_processes() -> None:
    assert pid_alive(os.getpid(), process_start(os.getpid()))
    assert not pid_alive(os.getpid(), "not-our-start-time")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
    assert not pid_alive(child.pid)  # a zombie holds nothing
    child.wait()
    assert not pid_alive(child.pid)
    assert not pid_alive(0)


def test_a_lock_names_this_process() -> None:
    info = Holder.current().new_lock(stack="s", operation="apply")
    assert info.pid == os.getpid() and info.operation == "apply" and info.since.endswith("Z")
    assert len(info.lock_id) == 36
