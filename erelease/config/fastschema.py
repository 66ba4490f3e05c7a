"""Compile a JSON Schema into one Python predicate: "is this instance valid?".

``jsonschema`` explains *why* an instance is invalid, which is what a user
needs, but walking its keyword machinery costs more than parsing a small YAML
file. Nearly every file is valid, so validation asks this predicate first and
runs ``jsonschema`` only when it says no. The predicate is generated Python
source — one expression per subschema, one function per object — so that a
valid document costs a handful of calls.

It must never accept what ``jsonschema`` rejects, so it supports only the
keywords whose Draft 2020-12 semantics it mirrors exactly (with jsonschema's
type rules: ``bool`` is not a number, ``1.0`` is an integer; ``pattern`` is
Python's unanchored ``re.search``) and raises :class:`Unsupported` for
anything else — the caller then always uses ``jsonschema``. A property test
checks that the two agree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Check", "Unsupported", "compile_schema"]

Check = Callable[[Any], bool]

#: Keywords that never make an instance invalid.
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "title",
        "description",
        "markdownDescription",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "patternErrorMessage",
        "errorMessage",
    }
)
_OBJECT_KEYWORDS = frozenset(
    {"properties", "additionalProperties", "required", "propertyNames", "minProperties"}
)
# jsonschema's type rules, as expressions over a variable named {v}.
_TYPES = {
    "string": "isinstance({v}, str)",
    "object": "isinstance({v}, dict)",
    "array": "isinstance({v}, list)",
    "boolean": "isinstance({v}, bool)",
    "null": "{v} is None",
    "number": "(isinstance({v}, (int, float)) and not isinstance({v}, bool))",
    "integer": "(isinstance({v}, int) and not isinstance({v}, bool)"
    " or isinstance({v}, float) and {v}.is_integer())",
}
_NUMBER = _TYPES["number"]
# The guard that makes a keyword vacuous for other types, per type that makes it redundant.
_GUARDS: dict[Any, str] = {
    "string": "(not isinstance({v}, str) or ",
    "integer": "(not " + _NUMBER + " or ",
    "number": "(not " + _NUMBER + " or ",
}


class Unsupported(Exception):
    """The schema uses a keyword or form this compiler does not mirror."""


def compile_schema(root: Mapping[str, Any]) -> Check:
    """A predicate equivalent to ``Draft202012Validator(root).is_valid``, or Unsupported."""
    generator = _Generator(root)
    body = generator.expr(root, "x")
    generator.lines += ["def check(x):", f"    return bool({body})"]
    namespace: dict[str, Any] = dict(generator.constants)
    exec(compile("\n".join(generator.lines), "<erelease schema>", "exec"), namespace)  # noqa: S102
    check: Check = namespace["check"]
    return check


def _unguard(part: str, guard: str) -> str:
    if part.startswith(guard) and part.endswith(")"):
        return "(" + part[len(guard) : -1] + ")"
    return part


class _Generator:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {"_MISSING": object()}
        self.refs: dict[str, str] = {}
        self.count = 0

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"_{prefix}{self.count}"

    def constant(self, value: Any) -> str:
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return name

    def expr(self, schema: Any, v: str) -> str:
        """A Python expression, true exactly when ``v`` is valid under ``schema``."""
        if schema is True:
            return "True"
        if schema is False:
            return "False"
        if not isinstance(schema, Mapping):
            raise Unsupported(repr(schema))
        parts: list[str] = []
        for keyword, value in schema.items():
            if keyword in _ANNOTATIONS or keyword in _OBJECT_KEYWORDS:
                continue
            if keyword in ("then", "else") and "if" in schema:
                continue
            parts.append(self.keyword(keyword, value, schema, v))
        guard = _GUARDS.get(schema.get("type"))
        if guard is not None:  # the type test comes first: the keywords' own guards can go
            parts = [_unguard(part, guard.format(v=v)) for part in parts]
        if _OBJECT_KEYWORDS.intersection(schema):
            parts.append(f"{self.object(schema)}({v})")
        return "(" + " and ".join(parts) + ")" if parts else "True"

    def keyword(self, keyword: str, value: Any, schema: Mapping[str, Any], v: str) -> str:
        if keyword == "$ref":
            return f"{self.ref(value)}({v})"
        if keyword == "type":
            names = [value] if isinstance(value, str) else list(value)
            if not names or any(name not in _TYPES for name in names):
                raise Unsupported(f"type {value!r}")
            return "(" + " or ".join(_TYPES[name].format(v=v) for name in names) + ")"
        if keyword in ("enum", "const"):
            allowed = list(value) if keyword == "enum" else [value]
            if not all(isinstance(item, str) for item in allowed):
                raise Unsupported(f"{keyword} of non-strings")
            return f"(isinstance({v}, str) and {v} in {self.constant(frozenset(allowed))})"
        if keyword == "pattern":
            search = self.constant(re.compile(value).search)
            return f"(not isinstance({v}, str) or {search}({v}) is not None)"
        if keyword in ("minLength", "maxLength"):
            op = ">=" if keyword == "minLength" else "<="
            return f"(not isinstance({v}, str) or len({v}) {op} {int(value)})"
        if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
                raise Unsupported(f"{keyword} {value!r}")
            op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">"}.get(keyword, "<")
            return f"(not {_NUMBER.format(v=v)} or {v} {op} {self.constant(value)})"
        if keyword in ("minItems", "maxItems"):
            op = ">=" if keyword == "minItems" else "<="
            return f"(not isinstance({v}, list) or len({v}) {op} {int(value)})"
        if keyword == "items":
            return f"{self.items(value)}({v})"
        if keyword in ("allOf", "anyOf", "oneOf"):
            branches = [self.expr(each, v) for each in value]
            if not branches:
                raise Unsupported(f"empty {keyword}")
            if keyword == "oneOf":
                return "(" + " + ".join(f"bool({b})" for b in branches) + " == 1)"
            joiner = " and " if keyword == "allOf" else " or "
            return "(" + joiner.join(branches) + ")"
        if keyword == "not":
            return f"(not {self.expr(value, v)})"
        if keyword == "if":
            then = self.expr(schema.get("then", True), v)
            otherwise = self.expr(schema.get("else", True), v)
            return f"({then} if {self.expr(value, v)} else {otherwise})"
        raise Unsupported(keyword)

    def ref(self, ref: Any) -> str:
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            raise Unsupported(f"$ref {ref!r}")
        if ref not in self.refs:
            target = self.root.get("$defs", {}).get(ref[len("#/$defs/") :])
            if target is None:
                raise Unsupported(f"$ref {ref!r}")
            name = self.fresh("ref")
            self.refs[ref] = name
            self.lines += [f"def {name}(x):", f"    return {self.expr(target, 'x')}"]
        return self.refs[ref]

    def items(self, schema: Any) -> str:
        check = self.expr(schema, "v")
        name = self.fresh("items")
        self.lines += [
            f"def {name}(x):",
            "    if not isinstance(x, list):",
            "        return True",
            "    for v in x:",
            f"        if not {check}:",
            "            return False",
            "    return True",
        ]
        return name

    def object(self, schema: Mapping[str, Any]) -> str:
        """properties, additionalProperties, required, propertyNames, minProperties."""
        if "patternProperties" in schema:
            raise Unsupported("patternProperties")
        properties: Mapping[str, Any] = schema.get("properties", {})
        body = ["    if not isinstance(x, dict):", "        return True"]
        if "minProperties" in schema:
            body += [f"    if len(x) < {int(schema['minProperties'])}:", "        return False"]
        for name in schema.get("required", ()):
            body += [f"    if {name!r} not in x:", "        return False"]
        known = self.constant(frozenset(properties))
        extra = schema.get("additionalProperties", True)
        if extra is False:
            body += [f"    if not x.keys() <= {known}:", "        return False"]
        elif extra is not True:
            body += [
                f"    for k in x.keys() - {known}:",
                "        v = x[k]",
                f"        if not {self.expr(extra, 'v')}:",
                "            return False",
            ]
        if "propertyNames" in schema:
            body += [
                "    for k in x:",
                f"        if not {self.expr(schema['propertyNames'], 'k')}:",
                "            return False",
            ]
        for name, sub in properties.items():
            check = self.expr(sub, "v")
            if check != "True":
                body += [
                    f"    v = x.get({name!r}, _MISSING)",
                    f"    if v is not _MISSING and not {check}:",
                    "        return False",
                ]
        function = self.fresh("object")
        self.lines += [f"def {function}(x):", *body, "    return True"]
        return function
