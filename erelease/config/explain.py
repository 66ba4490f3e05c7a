"""Turn jsonschema errors into messages a district IT admin can act on.

jsonschema's own messages echo the offending value (``'hunter2' does not match
'^ref…'``), which would print a secret someone typed into a secret field, and
they speak JSON rather than YAML. Here every error is rewritten from its
keyword, the schema's own ``patternErrorMessage``/``errorMessage`` (the same
text editors show through yaml-language-server) and the YAML node it came
from — which is how ``name: no`` can be explained as the YAML 1.1 boolean it
became. Values are echoed only outside secret fields.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from jsonschema import ValidationError  # type: ignore[import-untyped,unused-ignore]
from yaml.nodes import ScalarNode

from erelease.config.diagnostics import Diagnostic, Severity, field_path
from erelease.config.yamlnodes import Document, Problem
from erelease.config.yamlscalars import STR, describe

__all__ = ["Finding", "explain_errors", "problem_diagnostic", "to_diagnostics", "type_name"]

Path = tuple[str | int, ...]

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}
_SECRET_EXAMPLE = "a secret reference like ref+vault://<mount>/<path>#<key>"
# Incoming credentials name a whole secret: erelease writes client_id and client_secret there.
_WHOLE_SECRET_EXAMPLE = "a secret reference like ref+vault://<mount>/<path>"


def _secret_message(path: Path, instance: Any) -> str:
    example = _WHOLE_SECRET_EXAMPLE if path[-1:] == ("credentials",) else _SECRET_EXAMPLE
    if instance is None:
        return f"has no value; expected {example}"
    return (
        f"must be {example}; a plain value is not allowed here: move it into Vault and reference it"
    )


_REQUIRED_HINTS: dict[Path, str] = {
    ("apiVersion",): "add apiVersion: erelease/v1",
    ("kind",): "add kind: OutgoingConnection or kind: IncomingConnection",
    ("spec", "username"): "unless grantType is client_credentials",
    ("spec", "password"): "unless grantType is client_credentials",
}


@dataclass(frozen=True)
class Finding:
    """A problem in one document, before it has a file position."""

    path: Path
    message: str
    at_key: bool = False
    severity: Severity = "error"
    #: where it was found, when known better than by looking ``path`` up (e.g. a duplicate key)
    at: tuple[int, int] | None = None


def to_diagnostics(findings: Iterable[Finding], document: Document, path: str) -> list[Diagnostic]:
    """Findings placed at the line and column their field was written."""
    out = []
    for finding in findings:
        line, col = finding.at or document.where(finding.path, key=finding.at_key)
        field = field_path(finding.path)
        out.append(Diagnostic(path, line, col, finding.severity, field, finding.message))
    return out


def problem_diagnostic(problem: Problem, path: str) -> Diagnostic:
    field = field_path(problem.field)
    return Diagnostic(path, problem.line, problem.col, "error", field, problem.message)


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _quoted(value: Any) -> str:
    text = str(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def explain_errors(
    errors: Iterable[ValidationError], document: Document, secret_paths: Collection[Path]
) -> list[Finding]:
    """One :class:`Finding` per distinct problem, never echoing a secret field's value."""
    findings: list[Finding] = []
    seen: set[tuple[Path, str]] = set()
    for error in errors:
        for finding in _explain(error, document, secret_paths):
            if (finding.path, finding.message) not in seen:
                seen.add((finding.path, finding.message))
                findings.append(finding)
    return findings


def _explain(
    error: ValidationError, doc: Document, secret_paths: Collection[Path]
) -> list[Finding]:
    path: Path = tuple(error.absolute_path)
    keyword = error.validator
    value = error.validator_value
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    if keyword == "required":
        present = instance if isinstance(instance, dict) else {}
        missing = [name for name in value if name not in present]
        return [_required(path, name) for name in missing]
    if keyword == "additionalProperties":
        known = schema.get("properties", {})
        extras = [k for k in instance if k not in known] if isinstance(instance, dict) else []
        return [Finding((*path, key), _unknown(key, known), at_key=True) for key in extras]
    if "propertyNames" in error.relative_schema_path:
        return [Finding((*path, str(instance)), _keyword_message(error, schema), at_key=True)]
    if path in secret_paths and keyword in ("type", "pattern", "minLength", "maxLength"):
        return [Finding(path, _secret_message(path, instance))]
    if keyword == "type":
        return [Finding(path, _type_message(value, instance, doc, path))]
    if keyword == "enum":
        allowed = ", ".join(str(v) for v in value)
        return [Finding(path, f"must be one of: {allowed} (not {_shown(instance, doc, path)})")]
    if keyword == "const":
        if path == ("apiVersion",):
            message = f'unsupported apiVersion {_shown(instance, doc, path)}; expected "{value}"'
        else:
            message = f'must be "{value}" (not {_shown(instance, doc, path)})'
        return [Finding(path, message)]
    return [Finding(path, _keyword_message(error, schema))]


def _required(path: Path, name: str) -> Finding:
    full = (*path, name)
    hint = _REQUIRED_HINTS.get(full)
    return Finding(full, f"is required ({hint})" if hint else "is required", at_key=True)


def _unknown(key: str, known: Collection[str]) -> str:
    lowered = {name.lower(): name for name in known}
    guess = lowered.get(str(key).lower())
    if guess is None:
        close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.7)
        guess = close[0] if close else None
    if guess is not None:
        return f'unknown field; did you mean "{guess}"?'
    if known:
        return "unknown field; expected one of: " + ", ".join(sorted(known))
    return "unknown field"


def _shown(instance: Any, doc: Document, path: Path) -> str:
    """The value as written in the file: ``"no"`` rather than ``False``."""
    node = doc.node_at(path)
    if isinstance(node, ScalarNode):
        return _quoted(node.value)
    if isinstance(instance, str):
        return _quoted(instance)
    return type_name(instance)


def _type_message(expected: Any, instance: Any, doc: Document, path: Path) -> str:
    names = [expected] if isinstance(expected, str) else list(expected)
    wanted = " or ".join(_TYPE_NAMES.get(name, name) for name in names)
    node = doc.node_at(path)
    if instance is None:
        return f"has no value; expected {wanted}"
    plain = isinstance(node, ScalarNode) and not node.style and node.tag != STR
    if "string" in names and plain and node is not None:
        raw = node.value
        return f'"{raw}" is read as {describe(instance)} in YAML; quote it: "{raw}"'
    numeric = "integer" in names or "number" in names
    if isinstance(instance, str) and numeric and instance.strip().lstrip("+-").isdigit():
        return f"must be {wanted}, not a string; write {instance.strip()} without quotes"
    if isinstance(instance, str) and "boolean" in names and instance.lower() in ("true", "false"):
        return f"must be {wanted}, not a string; write {instance.lower()} without quotes"
    return f"must be {wanted}, not {type_name(instance)}"


def _keyword_message(error: ValidationError, schema: dict[str, Any]) -> str:
    keyword = error.validator
    value = error.validator_value
    instance = error.instance
    if keyword == "pattern":
        return str(schema.get("patternErrorMessage") or f"must match the pattern {value}")
    if keyword == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters long"
    if keyword == "maxLength":
        length = len(instance) if isinstance(instance, str) else "more"
        return f"must be at most {value} characters long (it has {length})"
    if keyword == "minimum":
        return f"must be ≥ {value}"
    if keyword == "maximum":
        return f"must be ≤ {value}"
    if keyword == "exclusiveMinimum":
        return f"must be > {value}"
    if keyword == "exclusiveMaximum":
        return f"must be < {value}"
    if keyword in ("anyOf", "oneOf"):
        return str(schema.get("errorMessage") or "does not match any of the allowed forms")
    if keyword == "minProperties":
        return "must not be empty"
    return f"is invalid ({keyword})"
