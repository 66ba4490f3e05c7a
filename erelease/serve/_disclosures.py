"""Export the record of disclosures: who received which transcript, and when.

FERPA (34 CFR §99.32) asks a district to keep, with each student's record, the
parties that obtained it. ``erelease disclosures`` prints this export so that an
auditor can open it in a spreadsheet (CSV) or a script can read it (JSON).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import UTC

from erelease.errors import UsageError
from erelease.model import Disclosure
from erelease.serve._pesc import parse_datetime
from erelease.state.base import StateStore

__all__ = ["CSV_COLUMNS", "export_disclosures"]

CSV_COLUMNS = ("released_at", "connection", "client_id", "document_id", "remote_addr")
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _normalise_since(since: str) -> str:
    """``since`` in the format disclosures are stored in, so string order is time order."""
    try:
        moment = parse_datetime(since)
    except ValueError:
        raise UsageError(
            f"--since: expected an ISO 8601 date or date-time, got {since!r}"
        ) from None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv(rows: list[Disclosure]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(str(getattr(row, column))) for column in CSV_COLUMNS])
    return buffer.getvalue()


def export_disclosures(
    *,
    store: StateStore,
    stack: str,
    since: str | None = None,
    fmt: str = "csv",
) -> str:
    """The record of disclosures of ``stack``, oldest first, as CSV (``fmt="csv"``) or JSON.

    JSON: ``{"format_version": "1", "stack", "since", "disclosures": [{released_at,
    connection, client_id, document_id, remote_addr}]}``. Raises
    :class:`~erelease.errors.UsageError` for a bad ``since`` or ``fmt``.
    """
    if fmt not in ("csv", "json"):
        raise UsageError(f"--format: expected csv or json, got {fmt!r}")
    normalised = _normalise_since(since) if since else None
    rows = store.list_disclosures(stack=stack, since=normalised)
    if fmt == "csv":
        return _csv(rows)
    document = {
        "format_version": "1",
        "stack": stack,
        "since": normalised,
        "disclosures": [{column: asdict(row)[column] for column in CSV_COLUMNS} for row in rows],
    }
    return json.dumps(document, indent=2) + "\n"
