"""Exporting the record of disclosures (``erelease disclosures``) from a real registry."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from erelease.errors import UsageError
from erelease.model import Disclosure
from erelease.serve import export_disclosures
from erelease.state import StateStore, open_store

STACK = "district-42"
ROWS = [
    Disclosure(
        "cfnc", "Fz9Qk2LmA7Xw3PcB", "HST-2025-000417", "2025-04-01T10:00:00.000Z", "10.1.2.3"
    ),
    Disclosure(
        "cfnc", "Fz9Qk2LmA7Xw3PcB", "HST-2025-000452", "2025-04-02T10:00:00.000Z", "10.1.2.3"
    ),
    Disclosure("parch", "Pq8Rs7Tu6Vw5Xy4Z", '=HYPERLINK("x")', "2025-04-03T09:30:00.500Z", "::1"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as opened:
        opened.init_stack(stack=STACK)
        for row in ROWS:
            opened.record_disclosure(stack=STACK, disclosure=row)
        yield opened


def test_csv_lists_every_disclosure_oldest_first(store: StateStore) -> None:
    text = export_disclosures(store=store, stack=STACK, since=None, fmt="csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["released_at", "connection", "client_id", "document_id", "remote_addr"]
    assert [r[3] for r in rows[1:]] == ["HST-2025-000417", "HST-2025-000452", '\'=HYPERLINK("x")']
    assert rows[1] == [
        "2025-04-01T10:00:00.000Z",
        "cfnc",
        "Fz9Qk2LmA7Xw3PcB",
        "HST-2025-000417",
        "10.1.2.3",
    ]


def test_json_export(store: StateStore) -> None:
    document = json.loads(export_disclosures(store=store, stack=STACK, since=None, fmt="json"))
    assert document["format_version"] == "1"
    assert document["stack"] == STACK
    assert len(document["disclosures"]) == 3
    assert document["disclosures"][2]["document_id"] == '=HYPERLINK("x")'  # JSON is data, not cells
    assert set(document["disclosures"][0]) == {
        "released_at",
        "connection",
        "client_id",
        "document_id",
        "remote_addr",
    }


@pytest.mark.parametrize(
    "since, count",
    [
        ("2025-04-02", 2),
        ("2025-04-02T10:00:00Z", 2),
        ("2025-04-02T06:00:01-04:00", 1),  # 10:00:01Z
        ("2025-04-03T09:30:00.500Z", 1),
        ("2026-01-01", 0),
    ],
)
def test_since_is_a_time_not_a_string(store: StateStore, since: str, count: int) -> None:
    document = json.loads(export_disclosures(store=store, stack=STACK, since=since, fmt="json"))
    assert len(document["disclosures"]) == count


def test_bad_since_or_format_is_a_usage_error(store: StateStore) -> None:
    with pytest.raises(UsageError, match="ISO 8601"):
        export_disclosures(store=store, stack=STACK, since="last week", fmt="csv")
    with pytest.raises(UsageError, match="ISO 8601"):  # no such moment in UTC
        export_disclosures(store=store, stack=STACK, since="0001-01-01T00:00+05:00", fmt="csv")
    with pytest.raises(UsageError, match="csv or json"):
        export_disclosures(store=store, stack=STACK, since=None, fmt="xml")


def test_empty_record(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'empty.db'}") as empty:
        assert export_disclosures(store=empty, stack=STACK, fmt="csv").count("\n") == 1
