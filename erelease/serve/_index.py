"""The index of the transcripts directory: the only way a request reaches a file.

A provider asks for a ``documentId``; that string is looked up in a dict built
from the files' own ``TransmissionData/DocumentID``. It is never joined to a
path, so ``../../etc/passwd`` (plain or percent-encoded) can only miss the
dict. The directory is rescanned when its modification time changes (a file
added, removed or renamed); a file edited in place is re-checked when it is
served, since editing does not touch the directory. A file that was skipped
(often one caught half-written by the export job that fills the directory) is
watched too: when its size or modification time moves, the directory is
rescanned, so it appears once it is complete.

Listing is keyset-paginated on ``(createdDateTime, documentId)``: a cursor is
the last key of a page, so pages stay consistent while files come and go.
"""

from __future__ import annotations

import base64
import bisect
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from erelease.serve._pesc import TranscriptInfo, TranscriptRejected, parse_transcript

__all__ = ["MAX_FILE_BYTES", "BadCursor", "IndexedTranscript", "TranscriptIndex"]

log = logging.getLogger("erelease.serve")

#: Files larger than this are skipped: a high-school transcript is tens of KiB.
MAX_FILE_BYTES = 8 * 1024 * 1024
_SUFFIXES = (".xml", ".XML")


class BadCursor(ValueError):
    """Raised when a ``cursor`` query value was not issued by this server."""


@dataclass(frozen=True)
class IndexedTranscript:
    """One transcript in the index: its facts and where its bytes live."""

    info: TranscriptInfo
    path: Path
    mtime_ns: int
    size: int

    @property
    def key(self) -> tuple[datetime, str]:
        return (self.info.created, self.info.document_id)


def encode_cursor(key: tuple[datetime, str]) -> str:
    raw = json.dumps([key[0].isoformat(), key[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[datetime, str]:
    if len(text) > 512:
        raise BadCursor("cursor is too long")
    try:
        # validate: a cursor with characters added is tampered with, not "close enough"
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        created, document_id = json.loads(raw)
        moment = datetime.fromisoformat(created)
    except (ValueError, TypeError) as exc:
        raise BadCursor("cursor is not one this server issued") from exc
    if not isinstance(document_id, str) or moment.tzinfo is None:
        raise BadCursor("cursor is not one this server issued")
    return (moment, document_id)


class TranscriptIndex:
    """DocumentID → file, for one directory; rebuilt when the directory changes.

    Not thread-safe: serve calls it from its single event loop.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._dir_mtime: int | None = None
        self._by_id: dict[str, IndexedTranscript] = {}
        self._sorted: list[IndexedTranscript] = []
        self._keys: list[tuple[datetime, str]] = []
        self._warned_missing = False
        #: files skipped at the last scan: path -> (mtime_ns, size) when skipped
        self._skipped: dict[Path, tuple[int, int]] = {}

    # -- building ------------------------------------------------------------
    def refresh(self) -> None:
        """Rescan if the directory's modification time moved, or a skipped file changed."""
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except OSError:
            if not self._warned_missing:
                log.warning(
                    "transcripts directory %s cannot be read; serving no transcripts",
                    self.directory,
                )
                self._warned_missing = True
            self._dir_mtime = None
            self._replace([])
            return
        self._warned_missing = False
        if mtime != self._dir_mtime or self._skipped_changed():
            self._dir_mtime = mtime
            self._scan()

    def _skipped_changed(self) -> bool:
        for path, signature in self._skipped.items():
            try:
                stat = path.stat()
            except OSError:
                continue  # gone: the directory's own mtime says so
            if (stat.st_mtime_ns, stat.st_size) != signature:
                return True
        return False

    def _scan(self) -> None:
        entries: list[IndexedTranscript] = []
        seen: dict[str, Path] = {}
        self._skipped = {}
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            log.warning("transcripts directory %s cannot be listed", self.directory)
            names = []
        for name in names:
            if not name.endswith(_SUFFIXES) or name.startswith("."):
                continue
            path = self.directory / name
            entry = self._load(path)
            if entry is None:
                continue
            other = seen.get(entry.info.document_id)
            if other is not None:
                log.warning(
                    "skipping transcript %s: DocumentID %r is also in %s",
                    name,
                    entry.info.document_id,
                    other.name,
                )
                self._skipped[path] = (entry.mtime_ns, entry.size)
                continue
            seen[entry.info.document_id] = entry.path
            entries.append(entry)
        self._replace(entries)
        log.info("indexed %d transcript(s) in %s", len(entries), self.directory)

    def _replace(self, entries: list[IndexedTranscript]) -> None:
        self._sorted = sorted(entries, key=lambda e: e.key)
        self._keys = [e.key for e in self._sorted]
        self._by_id = {e.info.document_id: e for e in self._sorted}

    def _load(self, path: Path) -> IndexedTranscript | None:
        """The file's index entry, or None (a usable file's skip is watched, see refresh)."""
        try:
            stat = path.stat()
            if not path.is_file():
                return None
            # taken before reading: a write that lands after it moves it again
            self._skipped[path] = (stat.st_mtime_ns, stat.st_size)
            if stat.st_size > MAX_FILE_BYTES:
                log.warning(
                    "skipping transcript %s: larger than %d bytes", path.name, MAX_FILE_BYTES
                )
                return None
            data = path.read_bytes()
        except OSError as exc:
            log.warning("skipping transcript %s: cannot be read (%s)", path.name, exc.strerror)
            return None
        try:
            info = parse_transcript(data)
        except TranscriptRejected as exc:
            log.warning("skipping transcript %s: %s", path.name, exc)
            return None
        del self._skipped[path]
        return IndexedTranscript(info=info, path=path, mtime_ns=stat.st_mtime_ns, size=len(data))

    # -- reading -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._sorted)

    def page(
        self, *, since: datetime | None, cursor: str | None, limit: int
    ) -> tuple[list[IndexedTranscript], str | None]:
        """One page of transcripts in (createdDateTime, documentId) order, and the next cursor."""
        start = 0
        if cursor is not None:
            start = bisect.bisect_right(self._keys, decode_cursor(cursor))
        if since is not None:
            start = max(start, bisect.bisect_left(self._keys, (since, "")))
        items = self._sorted[start : start + limit]
        more = start + limit < len(self._sorted)
        next_cursor = encode_cursor(items[-1].key) if items and more else None
        return items, next_cursor

    def read(self, document_id: str) -> tuple[TranscriptInfo, bytes] | None:
        """The transcript's facts and bytes, or ``None`` if no file holds that DocumentID now."""
        entry = self._by_id.get(document_id)
        if entry is None:
            return None
        try:
            stat = entry.path.stat()
            data = entry.path.read_bytes()
        except OSError:
            self._dir_mtime = None  # force a rescan on the next request
            return None
        if (stat.st_mtime_ns, stat.st_size) != (entry.mtime_ns, entry.size):
            # Edited in place since indexed: serve it only if it still is that document,
            # and rebuild the index on the next request so its date is current.
            self._dir_mtime = None
            try:
                info = parse_transcript(data)
            except TranscriptRejected as exc:
                log.warning("transcript %s changed and is now unusable: %s", entry.path.name, exc)
                return None
            if info.document_id != document_id:
                return None
            return info, data
        return entry.info, data
