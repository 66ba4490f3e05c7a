"""Read the two facts serve needs from a PESC transcript file, refusing hostile XML.

The transcripts directory is filled by district staff or an export job, so a
file there is trusted to be a transcript but not trusted to be harmless: a DTD
can define entities that expand to gigabytes ("billion laughs") or pull in
local files (XXE). The stdlib's expat is driven directly here with every
declaration handler set to refuse, so a document type declaration, an entity
declaration or an external reference stops the parse before anything expands.

Only ``TransmissionData/DocumentID`` and ``TransmissionData/CreatedDateTime``
are read, by local name, so the namespace version of the message (PESC
HighSchoolTranscript v1.3.0, v1.5.0, ...) and its prefixes do not matter. The
whole file is still parsed: a file that is not well-formed XML would fail at
the provider, so it is not offered at all.
"""

from __future__ import annotations

import xml.parsers.expat
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["MAX_DOCUMENT_ID", "TranscriptInfo", "TranscriptRejected", "parse_transcript"]

#: PESC's DocumentID is a short identifier (the schema limits it to 35 characters);
#: anything longer than this is treated as a malformed file.
MAX_DOCUMENT_ID = 128

_ROOT = "HighSchoolTranscript"
_WANTED = {"DocumentID": "document_id", "CreatedDateTime": "created"}


class TranscriptRejected(ValueError):
    """Raised when a file is not a usable PESC High School Transcript; says why."""


@dataclass(frozen=True)
class TranscriptInfo:
    """What the index keeps of one transcript file."""

    document_id: str
    created: datetime  # timezone-aware, UTC

    @property
    def created_text(self) -> str:
        """``createdDateTime`` as served: ISO 8601 in UTC with a ``Z``."""
        return format_utc(self.created)


def format_utc(moment: datetime) -> str:
    """ISO 8601 UTC with ``Z``; fractional seconds only when present."""
    text = moment.astimezone(UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 date or date-time; a time without an offset is taken as UTC.

    Raises ``ValueError`` for anything else.
    """
    value = text.strip()
    if not value or len(value) > 64:
        raise ValueError("not an ISO 8601 date-time")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+05:00 or 9999-12-31T23:59-05:00: no such moment in UTC
        raise ValueError("not a representable date-time") from None


def _local(name: str) -> str:
    # With namespace_separator=" ", expat reports "uri local" for namespaced names.
    return name.rsplit(" ", 1)[-1]


def _refuse(*_args: Any) -> None:
    raise TranscriptRejected("DTDs and entity declarations are not accepted")


def _refuse_external(
    _context: str, _base: str | None, _system_id: str | None, _public_id: str | None
) -> int:
    raise TranscriptRejected("external entities are not accepted")


class _Reader:
    """Streaming state for one parse: where we are and what we found."""

    def __init__(self) -> None:
        self.path: list[str] = []
        self.found: dict[str, str] = {}
        self.text: list[str] = []
        self.capturing: str | None = None

    def start(self, name: str, _attrs: Any) -> None:
        local = _local(name)
        if not self.path and local != _ROOT:
            raise TranscriptRejected(f"root element is {local}, not {_ROOT}")
        self.path.append(local)
        if (
            len(self.path) == 3
            and self.path[1] == "TransmissionData"
            and local in _WANTED
            and local not in self.found
        ):
            self.capturing = local
            self.text = []

    def end(self, _name: str) -> None:
        local = self.path.pop()
        if self.capturing == local and len(self.path) == 2:
            self.found[local] = "".join(self.text).strip()
            self.capturing = None

    def chars(self, data: str) -> None:
        if self.capturing is not None:
            self.text.append(data)


def parse_transcript(data: bytes) -> TranscriptInfo:
    """Parse a whole PESC transcript and return its DocumentID and CreatedDateTime.

    Raises :class:`TranscriptRejected` for anything that is not a well-formed
    ``HighSchoolTranscript`` with both values, or that carries a DTD.
    """
    reader = _Reader()
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse_external
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.chars
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise TranscriptRejected(f"not well-formed XML ({exc})") from None
    document_id = reader.found.get("DocumentID", "")
    created = reader.found.get("CreatedDateTime", "")
    if not document_id:
        raise TranscriptRejected("TransmissionData/DocumentID is missing or empty")
    if len(document_id) > MAX_DOCUMENT_ID or not document_id.isprintable():
        raise TranscriptRejected("TransmissionData/DocumentID is not a short printable string")
    try:
        moment = parse_datetime(created)
    except ValueError:
        raise TranscriptRejected(
            "TransmissionData/CreatedDateTime is missing or not an ISO 8601 date-time"
        ) from None
    return TranscriptInfo(document_id=document_id, created=moment)
