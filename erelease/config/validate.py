"""Validate one YAML document as a connection, and give its normal form.

The ``kind`` picks the schema; the schema reports every shape error (a fast
predicate first, jsonschema only to explain a failure); then the semantic
rules check URLs, paths and secret references in the fields the schema
accepted, so one mistake is reported once. Only a document with no error
becomes a :class:`~erelease.model.Connection`, whose spec is normalised the way
the registry stores it and plans compare it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from erelease.config.explain import Finding, explain_errors, type_name
from erelease.config.schemas import compiled
from erelease.config.semantics import (
    Checked,
    check_app_name,
    check_path,
    check_ref,
    check_server,
    unsupported_ref,
)
from erelease.config.yamlnodes import Document
from erelease.model import INCOMING, OUTGOING, SECRET_FIELDS, Connection, Kind, SecretRef, is_ref

__all__ = ["API_VERSION", "KIND_NAMES", "DocumentCheck", "check_connection", "reading_findings"]

API_VERSION = "erelease/v1"
KIND_NAMES: Mapping[str, Kind] = {"OutgoingConnection": OUTGOING, "IncomingConnection": INCOMING}
# The schema's name pattern, matched whole: JSON Schema's "$" would accept a trailing newline.
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_NAME_MESSAGE = (
    "must be 1 to 63 lowercase letters, digits or '-', starting and ending with a letter or digit"
)
_NO_REFS = "secret references are not allowed in metadata"

Path = tuple[str | int, ...]
_SECRET_PATHS: Mapping[str, frozenset[Path]] = {
    kind: frozenset(("spec", name) for name in fields) for kind, fields in SECRET_FIELDS.items()
}


@dataclass(frozen=True)
class DocumentCheck:
    """What one document turned out to be: its findings and, if valid, its connection."""

    kind: Kind | None
    name: str | None  # a well-formed name, even when the document has other errors
    findings: list[Finding]
    connection: Connection | None


def reading_findings(document: Document, error_paths: set[Path]) -> list[Finding]:
    """Problems found while reading (duplicate keys, surprising numbers) as findings."""
    return [
        Finding(p.field, p.message, at=(p.line, p.col))
        for p in document.problems
        if not (p.code == "number" and p.field in error_paths)
    ]


def check_connection(
    document: Document, *, file: str, default_app_name: str | None = None
) -> DocumentCheck:
    """Every problem of ``document`` as a connection, and the connection if there is none."""
    try:
        return _check(document, file=file, default_app_name=default_app_name)
    except RecursionError:
        findings = [Finding((), "the document is nested too deeply to validate")]
        return DocumentCheck(None, None, findings, None)


def _check(document: Document, *, file: str, default_app_name: str | None) -> DocumentCheck:
    data = document.data
    if not isinstance(data, dict):
        message = (
            "a connection must be a mapping with apiVersion, kind, metadata and spec, "
            f"not {type_name(data)}"
        )
        return DocumentCheck(
            None, None, [*reading_findings(document, set()), Finding((), message)], None
        )
    kind_name = data.get("kind")
    if not isinstance(kind_name, str) or kind_name not in KIND_NAMES:
        return DocumentCheck(
            None, None, [*reading_findings(document, set()), _kind_finding(data)], None
        )
    kind = KIND_NAMES[kind_name]
    metadata_refs = _metadata_refs(data)
    findings: list[Finding] = []
    error_paths: set[Path] = set()
    schema = compiled(kind_name)
    if schema.fast is None or not schema.fast(data):
        errors = schema.validator.iter_errors(data)
        explained = explain_errors(errors, document, _SECRET_PATHS[kind])
        findings = [f for f in explained if f.path not in metadata_refs]
        error_paths = {f.path for f in findings}
    if metadata_refs:
        error_paths.update(metadata_refs)
        findings += [Finding(path, _NO_REFS) for path in metadata_refs]
    if document.problems:
        findings = reading_findings(document, error_paths) + findings
    name = _name(data, findings, error_paths)
    spec = data.get("spec")
    normal: dict[str, Any] | None = None
    if isinstance(spec, dict):
        checker = _SpecChecker(spec, error_paths)
        if kind == OUTGOING:
            normal = checker.outgoing()
        else:
            normal = checker.incoming(default_app_name or name)
        findings += checker.findings
    connection = None
    if normal is not None and name is not None and not any(f.severity == "error" for f in findings):
        metadata = data["metadata"]
        connection = Connection(
            kind=kind,
            name=name,
            spec=normal,
            labels=dict(metadata.get("labels") or {}),
            protect=bool(metadata.get("protect", False)),
            file=file,
            line=document.line,
        )
    return DocumentCheck(kind, name, findings, connection)


def _kind_finding(data: dict[Any, Any]) -> Finding:
    expected = "OutgoingConnection or IncomingConnection"
    if "kind" not in data:
        return Finding(("kind",), f"is required (add kind: {expected})", at_key=True)
    value = data["kind"]
    if not isinstance(value, str):
        return Finding(("kind",), f"must be {expected}, not {type_name(value)}")
    guess = {k.lower(): k for k in KIND_NAMES}.get(value.lower())
    hint = f'; did you mean "{guess}"?' if guess else ""
    return Finding(("kind",), f'unknown kind "{value}"; expected {expected}{hint}')


def _metadata_refs(data: dict[Any, Any]) -> list[Path]:
    """Paths under ``metadata`` that hold a secret reference (never allowed there)."""
    metadata = data.get("metadata")
    if not isinstance(metadata, dict):
        return []
    found: list[Path] = [("metadata", k) for k, v in metadata.items() if is_ref(v)]
    labels = metadata.get("labels")
    if isinstance(labels, dict):
        found += [("metadata", "labels", k) for k, v in labels.items() if is_ref(v)]
    return found


def _name(data: dict[Any, Any], findings: list[Finding], error_paths: set[Path]) -> str | None:
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str):
        return None
    if _NAME.fullmatch(name):
        return name
    if ("metadata", "name") not in error_paths:
        findings.append(Finding(("metadata", "name"), _NAME_MESSAGE))
    return None


def _as_int(value: Any) -> int | None:
    """An integer as JSON Schema counts it (``443.0`` is one); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


class _SpecChecker:
    """Semantic checks and normal form of one ``spec`` mapping."""

    def __init__(self, spec: dict[Any, Any], error_paths: set[Path]) -> None:
        self.spec = spec
        self.error_paths = error_paths
        self.findings: list[Finding] = []

    def field(
        self, name: str, check: Callable[[str], Checked] | None = None, *, require_key: bool = True
    ) -> Checked | None:
        """A string field that may be a reference; None when absent or already reported."""
        value = self.spec.get(name)
        if not isinstance(value, str):
            return None
        path = ("spec", name)
        if self.error_paths and path in self.error_paths:
            return None
        if not value.startswith("ref+"):
            result = Checked(value=value) if check is None else check(value)
        elif is_ref(value):
            result = check_ref(value, require_key=require_key)
        else:
            message = unsupported_ref(value)
            result = Checked(errors=() if message is None else (message,))
        self.findings += [Finding(path, error) for error in result.errors]
        if result.warning is not None:
            self.findings.append(Finding(path, result.warning, severity="warning"))
        return result

    def value(self, name: str, check: Callable[[str], Checked] | None = None) -> Any:
        result = self.field(name, check)
        return None if result is None else result.value

    def outgoing(self) -> dict[str, Any]:
        spec = self.spec
        allow_http = spec.get("allowInsecureHttp") is True
        out: dict[str, Any] = {}
        if "vendor" in spec:
            out["vendor"] = self.value("vendor")
        out["authServer"] = self.value(
            "authServer", lambda v: check_server(v, allow_http=allow_http, path_field="authPath")
        )
        out["authPath"] = self.value("authPath", lambda v: check_path(v, server_field="authServer"))
        upload = self.field(
            "uploadServer",
            lambda v: check_server(v, allow_http=allow_http, path_field="uploadPath"),
        )
        out["uploadServer"] = None if upload is None else upload.value
        port = spec.get("uploadPort")
        out["uploadPort"] = _as_int(port)
        named = None if upload is None else upload.port
        port_ok = ("spec", "uploadPort") not in self.error_paths
        if named is not None and port_ok and out["uploadPort"] not in (None, named):
            self.findings.append(
                Finding(
                    ("spec", "uploadPort"),
                    f"is {out['uploadPort']} but uploadServer names port {named}; "
                    "give the port only in uploadPort",
                )
            )
        out["uploadPath"] = self.value(
            "uploadPath", lambda v: check_path(v, server_field="uploadServer")
        )
        out["consumerKey"] = self.value("consumerKey")
        out["consumerSecret"] = self.value("consumerSecret")
        for name in ("username", "password"):
            if name in spec:
                out[name] = self.value(name)
        out["grantType"] = spec.get("grantType", "password")
        out["clientAuth"] = spec.get("clientAuth", "basic")
        out["allowInsecureHttp"] = allow_http
        return out

    def incoming(self, default_app_name: str | None) -> dict[str, Any]:
        spec = self.spec
        out: dict[str, Any] = {}
        if "provider" in spec:
            out["provider"] = self.value("provider")
        if isinstance(spec.get("appName"), str) and spec["appName"].startswith("ref+"):
            # The appName is part of the public Token URL and serve matches it
            # without Vault, so it is a plain value by nature.
            self.findings.append(
                Finding(("spec", "appName"), "is part of the Token URL; write it as plain text")
            )
            out["appName"] = default_app_name
        elif "appName" in spec:
            out["appName"] = self.value("appName", check_app_name)
        else:
            out["appName"] = default_app_name
        credentials = self.field("credentials", require_key=False)
        ref = None if credentials is None else credentials.value
        if isinstance(ref, SecretRef):
            path = ("spec", "credentials")
            if ref.key is not None:
                self.findings.append(
                    Finding(
                        path,
                        "must name a whole secret, without #key: erelease writes client_id "
                        "and client_secret into it",
                    )
                )
            if ref.version is not None:
                self.findings.append(
                    Finding(path, "must not pin a ?version: erelease writes new versions there")
                )
        out["credentials"] = ref
        rotation = spec.get("rotation", 0)
        out["rotation"] = _as_int(rotation)
        return out
