"""Find the JSON Schemas that ship with erelease and compile each once per process.

The files in ``schemas/`` are the single source of truth for the shape of a
connection and of ``erelease.yaml``: editors use them through
yaml-language-server, and the validator uses these very files. A wheel carries
them inside the package (``erelease/schemas/``); a source checkout reads them
from the repository's ``schemas/`` directory.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import (  # type: ignore[import-untyped,unused-ignore]
    Draft202012Validator,
    ValidationError,
)

from erelease.config.fastschema import Check, Unsupported, compile_schema
from erelease.errors import ErelaseError

__all__ = ["SCHEMA_FILES", "CompiledSchema", "compiled", "load_schema", "schema_dir"]

#: Schema file per kind of document.
SCHEMA_FILES: Mapping[str, str] = {
    "OutgoingConnection": "outgoing-connection.schema.json",
    "IncomingConnection": "incoming-connection.schema.json",
    "settings": "settings.schema.json",
}


def schema_dir() -> Path:
    """``erelease/schemas/`` inside an installed wheel, else the checkout's ``schemas/``."""
    here = Path(__file__).resolve()
    packaged = here.parents[1] / "schemas"
    if packaged.is_dir():
        return packaged
    return here.parents[2] / "schemas"


@functools.cache
def load_schema(name: str) -> Mapping[str, Any]:
    """The parsed schema for ``name`` (a key of :data:`SCHEMA_FILES`)."""
    path = schema_dir() / SCHEMA_FILES[name]
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ErelaseError(
            f"cannot read erelease's schema file {path}; the installation is incomplete"
        ) from exc
    if not isinstance(schema, dict):
        raise ErelaseError(f"erelease's schema file {path} is not a JSON object")
    return schema


@dataclass(frozen=True)
class CompiledSchema:
    """A schema with its jsonschema validator and, when possible, a fast predicate."""

    name: str
    schema: Mapping[str, Any]
    validator: Draft202012Validator
    fast: Check | None

    def iter_errors(self, instance: Any) -> Iterator[ValidationError]:
        """Every schema error of ``instance``; nothing at all costs one predicate call."""
        if self.fast is not None and self.fast(instance):
            return iter(())
        errors: Iterator[ValidationError] = self.validator.iter_errors(instance)
        return errors


@functools.cache
def compiled(name: str) -> CompiledSchema:
    schema = load_schema(name)
    try:
        fast: Check | None = compile_schema(schema)
    except (Unsupported, re.error):
        fast = None
    return CompiledSchema(
        name=name, schema=schema, validator=Draft202012Validator(schema), fast=fast
    )
