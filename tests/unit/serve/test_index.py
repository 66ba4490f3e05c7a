"""The transcripts index: what is offered, rescans, and keyset pagination."""

from __future__ import annotations

import logging
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erelease.serve import _index
from erelease.serve._index import BadCursor, IndexedTranscript, TranscriptIndex, encode_cursor
from erelease.serve._pesc import TranscriptInfo

DATA = Path(__file__).resolve().parents[2] / "data" / "transcripts"
DOCS = ["HST-2025-000417", "HST-2025-000452", "HST-2025-000508"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "transcripts"
    shutil.copytree(DATA, target)
    return target


def touch_dir(path: Path, bump: int) -> None:
    """Make sure the directory's mtime moves even on coarse-clock file systems."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + bump * 1_000_000_000))


def ids(index: TranscriptIndex) -> list[str]:
    page, _ = index.page(since=None, cursor=None, limit=500)
    return [e.info.document_id for e in page]


def pesc(document_id: str, created: str) -> str:
    return (
        '<HighSchoolTranscript xmlns="urn:org:pesc:message:HighSchoolTranscript:v1.3.0">'
        f"<TransmissionData><DocumentID>{document_id}</DocumentID>"
        f"<CreatedDateTime>{created}</CreatedDateTime></TransmissionData></HighSchoolTranscript>"
    )


def test_indexes_the_samples_in_created_order(folder: Path) -> None:
    index = TranscriptIndex(folder)
    index.refresh()
    assert ids(index) == DOCS
    info, data = index.read("HST-2025-000452") or (None, b"")
    assert info is not None and data == (DATA / "hst-2025-000452-whitaker.xml").read_bytes()


def test_malformed_and_foreign_files_are_skipped_with_a_warning(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (folder / "broken.xml").write_text("<HighSchoolTranscript><TransmissionData>")
    (folder / "dtd.xml").write_text('<!DOCTYPE x [<!ENTITY a "b">]>' + pesc("EVIL", "2025-01-01"))
    (folder / "notes.txt").write_text(pesc("TXT", "2025-01-01"))
    (folder / ".hidden.xml").write_text(pesc("HIDDEN", "2025-01-01"))
    (folder / "subdir.xml").mkdir()
    # valid ISO 8601, but before 0001-01-01 in UTC: skipped, not a crash of the whole scan
    (folder / "year1.xml").write_text(pesc("YEAR1", "0001-01-01T00:00:00+05:00"))
    with caplog.at_level(logging.WARNING, logger="erelease.serve"):
        index = TranscriptIndex(folder)
        index.refresh()
    assert ids(index) == DOCS
    warned = caplog.text
    assert "broken.xml" in warned and "not well-formed" in warned
    assert "dtd.xml" in warned and "DTD" in warned
    assert "year1.xml" in warned and "CreatedDateTime" in warned
    assert "notes.txt" not in warned


def test_duplicate_document_ids_keep_the_first_file(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (folder / "zz-copy.xml").write_text(pesc("HST-2025-000417", "2030-01-01"))
    with caplog.at_level(logging.WARNING, logger="erelease.serve"):
        index = TranscriptIndex(folder)
        index.refresh()
    assert ids(index) == DOCS
    assert "zz-copy.xml" in caplog.text and "also in hst-2025-000417-okafor.xml" in caplog.text


def test_oversized_files_are_skipped(
    folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_index, "MAX_FILE_BYTES", 14_000)
    with caplog.at_level(logging.WARNING, logger="erelease.serve"):
        index = TranscriptIndex(folder)
        index.refresh()
    assert ids(index) == ["HST-2025-000508"]
    assert "larger than" in caplog.text


def test_rescans_when_the_directory_changes(folder: Path) -> None:
    index = TranscriptIndex(folder)
    index.refresh()
    (folder / "new.xml").write_text(pesc("NEW-1", "2026-01-01T00:00:00Z"))
    touch_dir(folder, 1)
    index.refresh()
    assert ids(index) == [*DOCS, "NEW-1"]
    (folder / "hst-2025-000417-okafor.xml").unlink()
    touch_dir(folder, 2)
    index.refresh()
    assert ids(index) == [*DOCS[1:], "NEW-1"]
    assert index.read("HST-2025-000417") is None


def test_a_file_caught_half_written_is_indexed_once_complete(folder: Path) -> None:
    # An export job writes in place: the directory changes when the file is created,
    # not when the last bytes land, so the skipped file itself must be watched.
    whole = pesc("LATE-1", "2026-01-01T00:00:00Z")
    path = folder / "late.xml"
    path.write_text(whole[: len(whole) // 2])
    index = TranscriptIndex(folder)
    index.refresh()
    assert ids(index) == DOCS
    directory_mtime = os.stat(folder).st_mtime_ns
    with path.open("a") as rest:
        rest.write(whole[len(whole) // 2 :])
    assert os.stat(folder).st_mtime_ns == directory_mtime
    index.refresh()
    assert ids(index) == [*DOCS, "LATE-1"]
    assert index.read("LATE-1") is not None


def test_a_duplicate_edited_to_its_own_id_is_indexed(folder: Path) -> None:
    source = (folder / "hst-2025-000417-okafor.xml").read_bytes()
    copy = folder / "zz-copy.xml"
    copy.write_bytes(source)
    index = TranscriptIndex(folder)
    index.refresh()
    assert ids(index) == DOCS
    copy.write_bytes(source.replace(b"HST-2025-000417", b"HST-2025-000999-B"))
    index.refresh()
    assert "HST-2025-000999-B" in ids(index)


def test_a_file_edited_in_place_is_rechecked_when_served(folder: Path) -> None:
    index = TranscriptIndex(folder)
    index.refresh()
    path = folder / "hst-2025-000417-okafor.xml"
    original = path.read_bytes()
    edited = original.replace(b"<FirstName>Maya</FirstName>", b"<FirstName>Maya A.</FirstName>")
    path.write_bytes(edited)
    found = index.read("HST-2025-000417")
    assert found is not None and found[1] == edited
    path.write_bytes(original.replace(b"HST-2025-000417", b"HST-2025-999999"))
    assert index.read("HST-2025-000417") is None  # no longer that document
    index.refresh()
    assert "HST-2025-999999" in ids(index)


def test_a_missing_directory_serves_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = TranscriptIndex(tmp_path / "absent")
    with caplog.at_level(logging.WARNING, logger="erelease.serve"):
        index.refresh()
        index.refresh()
    assert len(index) == 0
    assert caplog.text.count("cannot be read") == 1


def test_request_strings_never_become_paths(folder: Path) -> None:
    index = TranscriptIndex(folder)
    index.refresh()
    for attempt in ("../../etc/passwd", "/etc/passwd", "hst-2025-000417-okafor.xml", "", "."):
        assert index.read(attempt) is None


def _issued_cursor() -> str:
    return encode_cursor((datetime(2025, 1, 1, tzinfo=UTC), "HST-1"))


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "W10",
        "WyJ4IiwieSJd",
        "x" * 600,
        "bnVsbA",
        # an issued cursor with bytes added: base64 decoders that skip junk would take it
        _issued_cursor() + "\x00",
        _issued_cursor() + "!",
        "!" + _issued_cursor(),
    ],
)
def test_bad_cursors(folder: Path, cursor: str) -> None:
    index = TranscriptIndex(folder)
    index.refresh()
    with pytest.raises(BadCursor):
        index.page(since=None, cursor=cursor, limit=1)


BASE = datetime(2025, 1, 1, tzinfo=UTC)


@settings(max_examples=60, deadline=None)
@given(
    docs=st.lists(
        st.tuples(st.integers(0, 20), st.text("ABC-1", min_size=1, max_size=4)),
        max_size=30,
        unique_by=lambda d: d[1],
    ),
    limit=st.integers(1, 7),
    since=st.none() | st.integers(0, 21),
)
def test_pages_cover_every_item_once_in_order(
    docs: list[tuple[int, str]], limit: int, since: int | None
) -> None:
    """Equal createdDateTimes (same day) and any page size: keyset pages never skip or repeat."""
    index = TranscriptIndex(Path("/nonexistent"))
    entries = [
        IndexedTranscript(TranscriptInfo(doc, BASE + timedelta(days=day)), Path(doc), 0, 0)
        for day, doc in docs
    ]
    index._replace(entries)
    since_dt = BASE + timedelta(days=since) if since is not None else None
    expected = [e.info.document_id for e in sorted(entries, key=lambda e: e.key)]
    if since_dt is not None:
        expected = [
            e.info.document_id
            for e in sorted(entries, key=lambda e: e.key)
            if e.info.created >= since_dt
        ]
    seen: list[str] = []
    cursor = None
    for _ in range(len(docs) + 2):
        page, cursor = index.page(since=since_dt, cursor=cursor, limit=limit)
        assert len(page) <= limit
        seen += [e.info.document_id for e in page]
        if cursor is None:
            break
    assert seen == expected
