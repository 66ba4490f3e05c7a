"""Turn composed YAML nodes into plain Python, and find where any value was written.

The C parser composes nodes that carry their start marks; :class:`_Builder`
turns them into dicts, lists and scalars itself instead of PyYAML's
constructor, which silently keeps the last of two equal keys and expands
aliases without bound. The builder reports duplicate keys and non-string keys,
refuses any tag outside the YAML core types (``!!python/object``, ``!custom``),
refuses recursive aliases and nesting deeper than :data:`MAX_DEPTH`, and
bounds the nodes that aliases add (billion laughs) while memoising collections
so an alias costs nothing to build.

Positions are looked up lazily from the kept node tree
(:meth:`Document.where`): a valid file pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from erelease.config.yamlscalars import (
    AS_TEXT,
    FLOAT,
    INT,
    MAP,
    MERGE,
    SEQ,
    STR,
    YamlRefused,
    is_plain_number,
    key_message,
    number_message,
    refuse_tag,
    scalar_value,
)

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "Document",
    "Problem",
    "build_document",
    "path_of",
]

#: Collections nested deeper than this are refused (no real config comes close).
MAX_DEPTH = 100
#: How many nodes aliases may add to a document beyond the nodes written out.
MAX_ALIAS_NODES = 10_000


@dataclass(frozen=True)
class Problem:
    """A problem found while reading one file: 1-based position, field path, message."""

    line: int
    col: int
    field: tuple[str | int, ...]
    message: str
    #: "number" for a YAML 1.1 number surprise (a type error on the same field supersedes it)
    code: str = ""


_MERGE_KEY = object()


class _Builder:
    """Nodes → plain Python, memoising collections so that aliases cost nothing to build.

    ``expanded`` counts the nodes a consumer walking the result would visit,
    ``composed`` the nodes actually written; their difference is what aliases
    add, and is bounded by :data:`MAX_ALIAS_NODES`.
    """

    def __init__(self, *, aliases: bool = True) -> None:
        #: False when the document cannot hold an alias (no "&" anywhere): no bookkeeping then
        self.aliases = aliases
        self.memo: dict[int, tuple[Any, int]] = {}
        self.active: set[int] = set()
        self.expanded = 0
        self.composed = 0
        self.duplicates: list[tuple[MappingNode, Node]] = []
        self.bad_keys: list[tuple[MappingNode, Node]] = []
        self.odd_numbers: list[ScalarNode] = []

    def value(self, node: Node, depth: int) -> Any:
        if node.__class__ is ScalarNode:
            tag = node.tag
            if tag == STR:
                return node.value
            if tag in (INT, FLOAT) and not is_plain_number(node.value):
                self.odd_numbers.append(node)
            return scalar_value(node)
        if depth >= MAX_DEPTH:
            message = f"collections are nested deeper than {MAX_DEPTH} levels"
            raise YamlRefused(node, message, with_path=False)
        if self.aliases:
            return self.shared(node, depth)
        return self.collection(node, depth)

    def shared(self, node: Node, depth: int) -> Any:
        """A collection that an alias may reach again: built once, its expansion counted."""
        ident = id(node)
        hit = self.memo.get(ident)
        if hit is not None:
            self.expanded += hit[1]
            if self.expanded - self.composed > MAX_ALIAS_NODES:
                raise YamlRefused(
                    node,
                    f"aliases expand this document by more than {MAX_ALIAS_NODES} nodes "
                    "(refused as a possible billion-laughs attack)",
                )
            return hit[0]
        if ident in self.active:
            raise YamlRefused(node, "an alias refers to a collection that contains it")
        self.active.add(ident)
        count = len(node.value) * (2 if node.__class__ is MappingNode else 1)
        before = self.expanded
        self.expanded += count
        self.composed += count
        result = self.collection(node, depth)
        self.active.discard(ident)
        self.memo[ident] = (result, self.expanded - before)
        return result

    def collection(self, node: Node, depth: int) -> Any:
        if node.__class__ is MappingNode:
            if node.tag != MAP:
                raise refuse_tag(node)
            return self.mapping(node, depth)
        if node.tag != SEQ:
            raise refuse_tag(node)
        return [self.value(item, depth + 1) for item in node.value]

    def mapping(self, node: MappingNode, depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.__class__ is ScalarNode and key_node.tag == STR:
                key = key_node.value
            else:
                found = self.key(node, key_node)
                if found is _MERGE_KEY:
                    if merges:
                        self.duplicates.append((node, key_node))
                    merges.append(value_node)
                    continue
                if found is None:
                    continue
                key = found
            if key in out:
                self.duplicates.append((node, key_node))
            if value_node.__class__ is ScalarNode and value_node.tag == STR:
                out[key] = value_node.value
            else:
                out[key] = self.value(value_node, depth + 1)
        for merge in merges:
            self.merge(out, merge, depth)
        return out

    def key(self, mapping: MappingNode, node: Node) -> Any:
        """A non-string key: ``<<`` merges; others are reported and read as their text."""
        if node.__class__ is not ScalarNode:
            self.bad_keys.append((mapping, node))
            return None
        if node.tag == MERGE:
            return _MERGE_KEY
        if node.tag in AS_TEXT:
            return node.value
        scalar_value(node)  # refuses unknown tags
        self.bad_keys.append((mapping, node))
        return node.value

    def merge(self, out: dict[Any, Any], node: Node, depth: int) -> None:
        """Merge key ``<<`` (https://yaml.org/type/merge.html): own keys win, then earlier maps."""
        value = self.value(node, depth + 1)
        sources = value if isinstance(value, list) else [value]
        for source in sources:
            if not isinstance(source, dict):
                raise YamlRefused(node, "the merge key << takes a mapping or a list of mappings")
            for key, item in source.items():
                out.setdefault(key, item)


@dataclass(frozen=True)
class Document:
    """One YAML document: its plain data and the node tree that says where things are."""

    data: Any
    root: Node
    index: int
    #: errors found while reading: duplicate keys, non-string keys, surprising numbers
    problems: tuple[Problem, ...] = ()

    @property
    def line(self) -> int:
        return int(self.root.start_mark.line) + 1

    @property
    def col(self) -> int:
        return int(self.root.start_mark.column) + 1

    def _walk(self, path: Sequence[str | int]) -> list[tuple[Node | None, Node]]:
        """(key node, value node) for each segment of ``path`` that exists."""
        steps: list[tuple[Node | None, Node]] = []
        node = self.root
        for part in path:
            found = _child(node, part, set())
            if found is None:
                break
            steps.append(found)
            node = found[1]
        return steps

    def node_at(self, path: Sequence[str | int]) -> Node | None:
        steps = self._walk(path)
        return steps[-1][1] if len(steps) == len(path) and steps else None

    def where(self, path: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        """1-based (line, col) of the value at ``path`` (or of its key, with ``key``).

        When ``path`` does not exist, the key of its deepest existing ancestor.
        """
        steps = self._walk(path)
        if not steps:
            return self.line, self.col
        key_node, value_node = steps[-1]
        node = value_node
        if (key or len(steps) < len(path)) and key_node is not None:
            node = key_node
        return int(node.start_mark.line) + 1, int(node.start_mark.column) + 1


def _child(node: Node, part: str | int, seen: set[int]) -> tuple[Node | None, Node] | None:
    """The pair holding ``part`` in ``node``, following merge keys like the builder does."""
    if isinstance(node, SequenceNode):
        if isinstance(part, int) and 0 <= part < len(node.value):
            return None, node.value[part]
        return None
    if not isinstance(node, MappingNode) or id(node) in seen:
        return None
    seen.add(id(node))
    merges: list[Node] = []
    for key_node, value_node in reversed(node.value):
        if isinstance(key_node, ScalarNode):
            if key_node.tag == MERGE:
                merges.insert(0, value_node)
            elif key_node.value == part:
                return key_node, value_node
    for merge in merges:
        sources = merge.value if isinstance(merge, SequenceNode) else [merge]
        for source in sources:
            found = _child(source, part, seen)
            if found is not None:
                return found
    return None


def path_of(root: Node, target: Node) -> tuple[str | int, ...]:
    """The field path of ``target``'s first occurrence under ``root`` (only to report problems).

    Document order matters: an anchor precedes its aliases, so the first
    occurrence is where the node was written.
    """
    stack: list[tuple[Node, tuple[str | int, ...]]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if id(node) in seen:
            continue
        seen.add(id(node))
        children: list[tuple[Node, tuple[str | int, ...]]] = []
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if key_node is target:
                    return path
                label = key_node.value if isinstance(key_node, ScalarNode) else "?"
                children.append((value_node, (*path, label)))
        elif isinstance(node, SequenceNode):
            children = [(item, (*path, i)) for i, item in enumerate(node.value)]
        stack.extend(reversed(children))
    return ()


def _mark(node: Node) -> tuple[int, int]:
    return int(node.start_mark.line) + 1, int(node.start_mark.column) + 1


def build_document(
    root: Node, index: int, problems: list[Problem], *, aliases: bool = True
) -> Document | None:
    """The document rooted at ``root``; a refusal goes to ``problems`` and gives None.

    ``aliases=False`` promises that the text holds no anchor (so no alias).
    """
    builder = _Builder(aliases=aliases)
    try:
        data = builder.value(root, 0)
    except YamlRefused as exc:
        line, col = _mark(exc.node)
        path = path_of(root, exc.node) if exc.with_path else ()
        problems.append(Problem(line, col, path, exc.message))
        return None
    if data is None:
        return None  # an empty document (or a lone null): nothing to validate
    found: list[Problem] = []
    for mapping, key_node in builder.duplicates:
        label = key_node.value if isinstance(key_node, ScalarNode) else "?"
        first = next((k for k, _ in mapping.value if k.value == label), key_node)
        message = (
            f'duplicate key "{label}" (first on line {_mark(first)[0]}); '
            "YAML readers would silently keep only one"
        )
        found.append(Problem(*_mark(key_node), (*path_of(root, mapping), label), message))
    for mapping, key_node in builder.bad_keys:
        path = path_of(root, mapping)
        if isinstance(key_node, ScalarNode):
            found.append(Problem(*_mark(key_node), (*path, key_node.value), key_message(key_node)))
        else:
            found.append(Problem(*_mark(key_node), path, "a mapping key must be a plain string"))
    for node in builder.odd_numbers:
        found.append(Problem(*_mark(node), path_of(root, node), number_message(node), "number"))
    return Document(data=data, root=root, index=index, problems=tuple(found))
