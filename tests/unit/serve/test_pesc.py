"""Reading DocumentID and CreatedDateTime from PESC files, and refusing hostile XML."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from erelease.serve._pesc import TranscriptRejected, format_utc, parse_datetime, parse_transcript

DATA = Path(__file__).resolve().parents[2] / "data" / "transcripts"
NS = "urn:org:pesc:message:HighSchoolTranscript:v1.3.0"


BODY = "<DocumentID>D-1</DocumentID><CreatedDateTime>2025-01-02T03:04:05Z</CreatedDateTime>"


def transcript(
    body: str = BODY,
    *,
    prolog: str = "",
    root: str = "HSTrn:HighSchoolTranscript",
) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
        f'<{root} xmlns:HSTrn="{NS}"><TransmissionData>{body}</TransmissionData>'
        f"<Student><Person><Name><FirstName>A</FirstName></Name></Person></Student></{root}>"
    ).encode()


@pytest.mark.parametrize("path", sorted(DATA.glob("*.xml")), ids=lambda p: p.name)
def test_sample_transcripts_parse(path: Path) -> None:
    info = parse_transcript(path.read_bytes())
    assert info.document_id.startswith("HST-2025-")
    assert info.created.tzinfo is not None


def test_sample_set_is_a_realistic_hs_transcript() -> None:
    text = (DATA / "hst-2025-000417-okafor.xml").read_text(encoding="utf-8")
    for element in (
        "TransmissionData",
        "DocumentTypeCode",
        "TransmissionType",
        "<Source>",
        "<Destination>",
        "<Person>",
        "<Name>",
        "<AcademicRecord>",
        "<AcademicSession>",
        "<Course>",
    ):
        assert element in text
    assert NS in text


def test_reads_values_by_local_name_whatever_the_namespace() -> None:
    plain = transcript(root="HighSchoolTranscript").replace(f' xmlns:HSTrn="{NS}"'.encode(), b"")
    assert parse_transcript(plain).document_id == "D-1"
    default = plain.replace(
        b"<HighSchoolTranscript>",
        b'<HighSchoolTranscript xmlns="urn:org:pesc:message:HighSchoolTranscript:v1.5.0">',
    )
    assert parse_transcript(default).document_id == "D-1"


def test_values_are_trimmed_and_times_normalised_to_utc() -> None:
    data = transcript(
        "<DocumentID>\n  D-7 \n</DocumentID><CreatedDateTime>2025-03-20T08:30:00-04:00"
        "</CreatedDateTime>"
    )
    info = parse_transcript(data)
    assert info.document_id == "D-7"
    assert info.created == datetime(2025, 3, 20, 12, 30, tzinfo=UTC)
    assert info.created_text == "2025-03-20T12:30:00Z"


def test_document_id_elsewhere_is_not_taken() -> None:
    data = transcript(
        "<Source><DocumentID>wrong</DocumentID></Source><DocumentID>right</DocumentID>"
        "<CreatedDateTime>2025-01-01</CreatedDateTime>"
    )
    assert parse_transcript(data).document_id == "right"


BILLION_LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
)
XXE = '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


@pytest.mark.parametrize(
    "data",
    [
        transcript(prolog=BILLION_LAUGHS).replace(b"D-1", b"&lol3;"),
        transcript(prolog=XXE).replace(b"D-1", b"&xxe;"),
        transcript(prolog='<!DOCTYPE HighSchoolTranscript SYSTEM "http://example.invalid/x.dtd">'),
        transcript(prolog="<!DOCTYPE HighSchoolTranscript>"),
    ],
    ids=["billion-laughs", "xxe", "external-dtd", "empty-doctype"],
)
def test_dtds_and_entities_are_refused(data: bytes) -> None:
    with pytest.raises(TranscriptRejected, match=r"DTD|entit"):
        parse_transcript(data)


@pytest.mark.parametrize(
    "data, why",
    [
        (b"", "well-formed"),
        (b"<HighSchoolTranscript><TransmissionData>", "well-formed"),
        (transcript(root="CollegeTranscript"), "root element"),
        (transcript("<CreatedDateTime>2025-01-01</CreatedDateTime>"), "DocumentID"),
        (
            transcript("<DocumentID> </DocumentID><CreatedDateTime>2025-01-01</CreatedDateTime>"),
            "DocumentID",
        ),
        (transcript("<DocumentID>D</DocumentID>"), "CreatedDateTime"),
        (
            transcript("<DocumentID>D</DocumentID><CreatedDateTime>soon</CreatedDateTime>"),
            "CreatedDateTime",
        ),
        (
            transcript(
                f"<DocumentID>{'x' * 200}</DocumentID><CreatedDateTime>2025-01-01</CreatedDateTime>"
            ),
            "DocumentID",
        ),
        (b"\xff\xfe<x/>", "well-formed"),
        (
            transcript(
                "<DocumentID>D</DocumentID>"
                "<CreatedDateTime>0001-01-01T00:00:00+05:00</CreatedDateTime>"
            ),
            "CreatedDateTime",
        ),
    ],
    ids=[
        "empty",
        "truncated",
        "wrong-root",
        "no-id",
        "blank-id",
        "no-date",
        "bad-date",
        "long-id",
        "junk",
        "date-before-year-1-in-utc",
    ],
)
def test_malformed_files_are_rejected_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(TranscriptRejected, match=why):
        parse_transcript(data)


def test_parse_datetime() -> None:
    assert parse_datetime("2025-01-02") == datetime(2025, 1, 2, tzinfo=UTC)
    assert parse_datetime("2025-01-02T03:04:05Z") == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (
        format_utc(parse_datetime("2025-01-02T03:04:05.250+01:00")) == "2025-01-02T02:04:05.250000Z"
    )
    # the last two are valid ISO 8601 but outside what UTC can represent
    overflow = ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00")
    for bad in ("", "yesterday", "2025-13-01", "x" * 100, *overflow):
        with pytest.raises(ValueError):
            parse_datetime(bad)
