"""Read the bytes of a YAML file safely, and compose its documents with libyaml.

Before libyaml sees a file, the bytes are checked here: at most 1 MiB, valid
UTF-8 (a BOM is fine), no characters YAML forbids, and — when a cheap bound
says nesting *could* be deep — an event scan that stops at ``MAX_DEPTH``,
because libyaml's cost grows with the square of flow nesting and its composer
recurses on the C stack (a few tens of thousands of ``[`` crash the process).
Then the C parser only *composes* nodes, and :mod:`erelease.config.yamlnodes`
builds plain Python from them. Without libyaml, PyYAML's pure-Python composer
does the same, more slowly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol, cast

import yaml
from yaml.composer import Composer
from yaml.events import MappingEndEvent, MappingStartEvent, SequenceEndEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from erelease.config.yamlnodes import MAX_DEPTH, Document, Problem, build_document
from erelease.config.yamlscalars import MAP, SEQ, STR

__all__ = ["LOADER", "MAX_BYTES", "PurePythonLoader", "parse_yaml"]

#: Files larger than this are refused before parsing.
MAX_BYTES = 1 << 20
#: Below this bound on nesting, libyaml may compose directly (see _depth_bound).
_SAFE_NESTING = 1000
# Characters YAML 1.1/1.2 forbid in a stream (YAML 1.2 §5.1, c-printable).
_NON_PRINTABLE_ASCII = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NON_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class _Loader(Protocol):
    def check_node(self) -> bool: ...
    def get_node(self) -> Node: ...
    def get_event(self) -> Any: ...
    def dispose(self) -> None: ...


_RESOLVED: dict[str, str] = {}


class _CachedResolver(Resolver):
    """PyYAML's resolver with a memo: config keys repeat across thousands of files."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode:
            if not implicit[0]:
                return STR
            tag = _RESOLVED.get(value)
            if tag is None:
                tag = str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]
                if len(_RESOLVED) < 8192 and len(value) <= 128:
                    _RESOLVED[value] = tag
            return tag
        return MAP if kind is MappingNode else SEQ


class PurePythonLoader(Reader, Scanner, Parser, Composer, _CachedResolver):
    """Composer used when PyYAML was built without libyaml."""

    def __init__(self, stream: bytes) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _CachedResolver.__init__(self)


LOADER: Callable[[bytes], _Loader]
try:
    from yaml._yaml import CParser

    class CLoader(CParser, _CachedResolver):
        """libyaml composes; only the resolver runs in Python."""

        def __init__(self, stream: bytes) -> None:
            CParser.__init__(self, stream)
            _CachedResolver.__init__(self)

    LOADER = cast(Callable[[bytes], _Loader], CLoader)
except ImportError:  # pragma: no cover - PyYAML without libyaml
    LOADER = cast(Callable[[bytes], _Loader], PurePythonLoader)


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based (line, col) of character ``index``; a BOM takes no column."""
    lines = text[:index].splitlines(keepends=True)
    if not lines:
        line, col = 1, 1
    elif lines[-1].endswith(("\n", "\r", "\x85", "\u2028", "\u2029")):
        line, col = len(lines) + 1, 1
    else:
        line, col = len(lines), len(lines[-1]) + 1
    if line == 1 and text.startswith("\ufeff") and index > 0:
        col -= 1
    return line, col


def _depth_bound(data: bytes) -> int:
    """An upper bound on nesting that costs a few memchr passes (the file's size is another).

    Every collection owns at least one indicator of its own (``[`` ``{`` ``-``
    ``?`` ``:``); and a block collection nested in another starts at least one
    column further right, except a sequence directly under a mapping key
    (YAML 1.2 §8.2.1), so block nesting is at most twice the longest line.
    """
    flow = data.count(b"[") + data.count(b"{")
    indicators = flow + data.count(b"-") + data.count(b"?") + data.count(b":")
    if indicators <= _SAFE_NESTING:
        return indicators
    longest = max((len(line) for line in data.splitlines()), default=0)
    return min(indicators, 2 * longest + 2 + flow)


def _too_deep(data: bytes) -> tuple[int, int] | None:
    """Where nesting first exceeds MAX_DEPTH, scanning events (stops early, stays cheap)."""
    loader = LOADER(data)
    depth = 0
    try:
        while True:
            event = loader.get_event()
            if event is None:
                return None
            kind = event.__class__
            if kind is MappingStartEvent or kind is SequenceStartEvent:
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    return int(mark.line) + 1, int(mark.column) + 1
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                depth -= 1
    except yaml.YAMLError as exc:
        if "nesting depth" in str(exc):
            # Newer libyaml stops deep flow nesting in its scanner, before any
            # event reaches us: find the opener that crossed our own bound.
            return _flow_too_deep(data) or (1, 1)
        return None  # the composer reports the syntax error itself
    finally:
        loader.dispose()


def _flow_too_deep(data: bytes) -> tuple[int, int] | None:
    """Line and column of the flow opener (``[``/``{``) past MAX_DEPTH, skipping quotes."""
    depth, line, col, quote = 0, 1, 0, 0
    for byte in data:
        col += 1
        if byte == 0x0A:
            line, col = line + 1, 0
        elif quote:
            if byte == quote:
                quote = 0
        elif byte in (0x22, 0x27):  # " '
            quote = byte
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                return line, col
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return None


def _yaml_error(exc: yaml.YAMLError) -> Problem:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        line, col = int(mark.line) + 1, int(mark.column) + 1
        problem = exc.problem or "invalid YAML"
        context_mark = exc.context_mark
        if problem == "second occurrence" and context_mark is not None:
            message = f"duplicate anchor (first defined on line {int(context_mark.line) + 1})"
        elif exc.context and context_mark is not None:
            where = int(context_mark.line) + 1
            message = f"{problem} ({exc.context} on line {where})"
        else:
            message = problem
        return Problem(line, col, (), f"invalid YAML: {message}")
    return Problem(1, 1, (), "invalid YAML: the file cannot be parsed")


def _check_bytes(data: bytes) -> Problem | None:
    """Size, UTF-8 and the characters YAML forbids; None when the bytes may be parsed."""
    if len(data) > MAX_BYTES:
        return Problem(1, 1, (), "the file is larger than 1 MiB; split it into several files")
    if data.isascii():  # most files: ASCII is UTF-8, and a bytes search is cheap
        bad_ascii = _NON_PRINTABLE_ASCII.search(data)
        if bad_ascii is None:
            return None
        text = data.decode("ascii")
        index = bad_ascii.start()
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            prefix = data[: exc.start].decode("utf-8")
            line, col = _position(prefix, len(prefix))
            message = f"invalid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
            return Problem(line, col, (), message)
        bad = _NON_PRINTABLE.search(text)
        if bad is None:
            return None
        index = bad.start()
    line, col = _position(text, index)
    code = f"U+{ord(text[index]):04X}"
    return Problem(line, col, (), f"the control character {code} is not allowed in YAML")


def parse_yaml(data: bytes) -> tuple[list[Document], list[Problem]]:
    """Every non-empty document of ``data`` and every problem found reading it."""
    refused = _check_bytes(data)
    if refused is not None:
        return [], [refused]
    if len(data) > _SAFE_NESTING and _depth_bound(data) > _SAFE_NESTING:
        deep = _too_deep(data)
        if deep is not None:
            message = f"collections are nested deeper than {MAX_DEPTH} levels"
            return [], [Problem(deep[0], deep[1], (), message)]
    documents: list[Document] = []
    problems: list[Problem] = []
    aliases = b"&" in data  # an alias needs an anchor, and an anchor needs "&"
    loader = LOADER(data)
    try:
        index = 0
        while loader.check_node():
            root = loader.get_node()
            document = build_document(root, index, problems, aliases=aliases)
            if document is not None:
                documents.append(document)
            index += 1
    except yaml.YAMLError as exc:
        problems.append(_yaml_error(exc))
    except RecursionError:
        problems.append(Problem(1, 1, (), "collections are nested too deeply"))
    finally:
        loader.dispose()
    return documents, problems
