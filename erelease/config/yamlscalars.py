"""YAML scalars as YAML 1.1 reads them, and how to explain the surprising ones.

PyYAML resolves plain scalars by the YAML 1.1 rules: ``no`` is a boolean,
``0443`` is octal 291, ``1:30`` is 90. erelease keeps those rules (it is what
other YAML 1.1 tools would read from the same file) but turns them into
messages that say what happened and how to write what was meant. Tags outside
the core types are refused here: nothing in a config is ever built from a tag.
"""

from __future__ import annotations

import math
import re
from typing import Any

from yaml.nodes import Node, ScalarNode

__all__ = [
    "BOOL",
    "FLOAT",
    "INT",
    "MAP",
    "MERGE",
    "NULL",
    "SEQ",
    "STR",
    "YamlRefused",
    "describe",
    "is_plain_number",
    "key_message",
    "number_message",
    "refuse_tag",
    "scalar_value",
    "short_tag",
]

_PREFIX = "tag:yaml.org,2002:"
STR = _PREFIX + "str"
NULL = _PREFIX + "null"
BOOL = _PREFIX + "bool"
INT = _PREFIX + "int"
FLOAT = _PREFIX + "float"
MAP = _PREFIX + "map"
SEQ = _PREFIX + "seq"
MERGE = _PREFIX + "merge"
# Implicit timestamps and the YAML 1.1 "=" value stay strings: no erelease field wants a date.
AS_TEXT = frozenset({_PREFIX + "timestamp", _PREFIX + "value"})
# YAML 1.1 booleans (https://yaml.org/type/bool.html) as PyYAML resolves them.
_TRUE = frozenset({"yes", "true", "on"})
_FALSE = frozenset({"no", "false", "off"})
# Numbers that read the same in YAML 1.1, YAML 1.2 and JSON; others (0443, 0x1bb, 1:30) do not.
_PLAIN_NUMBER = re.compile(r"[-+]?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


class YamlRefused(Exception):
    """A node that erelease will not construct (bad tag, alias bomb, too deep)."""

    def __init__(self, node: Node, message: str, *, with_path: bool = True) -> None:
        super().__init__(message)
        self.node = node
        self.message = message
        #: False when the field path would say nothing useful (a hundred levels deep)
        self.with_path = with_path


def _yaml11_int(text: str) -> int:
    """An int as YAML 1.1 reads it (https://yaml.org/type/int.html): 0b, 0x, 0 octal, 1:30."""
    value = text.replace("_", "")
    sign = 1
    if value[:1] in ("-", "+"):
        sign = -1 if value[0] == "-" else 1
        value = value[1:]
    if value == "0":
        return 0
    if value.startswith("0b"):
        return sign * int(value[2:], 2)
    if value.startswith("0x"):
        return sign * int(value[2:], 16)
    if value.startswith("0"):
        return sign * int(value, 8)
    if ":" in value:  # sexagesimal: 1:30 is 90
        result = 0
        for part in value.split(":"):
            result = result * 60 + int(part)
        return sign * result
    return sign * int(value)


def _yaml11_float(text: str) -> float:
    """A float as YAML 1.1 reads it (https://yaml.org/type/float.html)."""
    value = text.replace("_", "").lower()
    sign = 1.0
    if value[:1] in ("-", "+"):
        sign = -1.0 if value[0] == "-" else 1.0
        value = value[1:]
    if value == ".inf":
        return sign * math.inf
    if value == ".nan":
        return math.nan
    if ":" in value:
        result = 0.0
        for part in value.split(":"):
            result = result * 60 + float(part)
        return sign * result
    return sign * float(value)


def short_tag(tag: str) -> str:
    return "!!" + tag[len(_PREFIX) :] if tag.startswith(_PREFIX) else tag


def refuse_tag(node: Node) -> YamlRefused:
    return YamlRefused(
        node,
        f"the tag {short_tag(node.tag)} is not allowed: erelease reads plain YAML data only "
        "(strings, numbers, booleans, null, mappings and lists)",
    )


def scalar_value(node: ScalarNode) -> Any:
    """The Python value of a scalar node, or :class:`YamlRefused`."""
    tag = node.tag
    text: str = node.value
    if tag == STR or tag in AS_TEXT:
        return text
    if tag == NULL:
        return None
    try:
        if tag == BOOL:
            lowered = text.lower()
            if lowered in _TRUE or lowered in _FALSE:
                return lowered in _TRUE
            raise ValueError(text)
        if tag == INT:
            return _yaml11_int(text)
        if tag == FLOAT:
            return _yaml11_float(text)
    except ValueError:
        raise YamlRefused(node, f"cannot be read as {short_tag(tag)}") from None
    raise refuse_tag(node)


def number_message(node: ScalarNode) -> str:
    raw: str = node.value
    digits = raw.lstrip("+-")
    if digits.startswith(("0x", "0X")):
        why = "0x means hexadecimal"
    elif digits.startswith(("0b", "0B")):
        why = "0b means binary"
    elif ":" in raw:
        why = "a colon means base 60"
    elif "_" in raw:
        why = "underscores are dropped"
    elif digits.startswith("0") and digits[1:2].isdigit():
        why = "a leading 0 means octal"
    else:
        why = "it is not a plain decimal number"
    value = scalar_value(node)
    return (
        f'"{raw}" is read as the number {value!r} in YAML 1.1 ({why}); '
        f'write the number in plain decimal, or quote it if it is text: "{raw}"'
    )


def key_message(node: ScalarNode) -> str:
    raw = node.value
    return f'the key "{raw}" is read as {describe(scalar_value(node))} in YAML; quote it: "{raw}"'


def describe(value: Any) -> str:
    """How a YAML 1.1 surprise reads: ``the boolean false``, ``the number 83``, ``null``."""
    if value is None:
        return "null (no value)"
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return f"the {type(value).__name__}"


def is_plain_number(text: str) -> bool:
    return _PLAIN_NUMBER.fullmatch(text) is not None
