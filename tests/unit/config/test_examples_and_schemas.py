"""The shipped examples validate, and the schemas are sound for editors and the validator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from erelease.config import load_config
from erelease.config.schemas import SCHEMA_FILES, compiled, load_schema, schema_dir
from erelease.model import SecretRef

REPO = Path(__file__).resolve().parents[3]


def test_examples_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = load_config(REPO)
    assert [d.format() for d in result.diagnostics] == []
    by_address = {c.address: c for c in result.connections}
    assert {"outgoing/parchment", "outgoing/nsc", "incoming/cfnc"} <= set(by_address)
    parchment = by_address["outgoing/parchment"].spec
    assert parchment["authServer"] == "https://int-api.parchment.example"
    assert parchment["password"] == SecretRef("secret", "erelease/parchment", "password")
    cfnc = by_address["incoming/cfnc"].spec
    assert cfnc["credentials"] == SecretRef("secret", "erelease/incoming/cfnc")


@pytest.mark.parametrize("name", ["parchment.yaml", "nsc.yaml", "cfnc.yaml"])
def test_examples_name_their_schema_for_editors(name: str) -> None:
    first = (REPO / "connections.d" / name).read_text().splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=../schemas/")
    schema = (REPO / "connections.d" / first.split("=", 1)[1]).resolve()
    assert schema.is_file()


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_schemas_are_valid_2020_12_with_ids(name: str) -> None:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("https://erelease.dev/schemas/v1/")
    assert schema["title"] and schema["description"]


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_every_property_is_described_for_completion(name: str) -> None:
    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for key, sub in node.get("properties", {}).items():
                described = "description" in sub or "$ref" in sub
                assert described, f"{where}.{key} has no description"
                walk(sub, f"{where}.{key}")
            for key in ("$defs",):
                for sub_name, sub in node.get(key, {}).items():
                    walk(sub, f"{where}.{sub_name}")

    walk(load_schema(name), name)


def test_both_connection_schemas_share_one_metadata_definition() -> None:
    outgoing = load_schema("OutgoingConnection")["$defs"]["metadata"]
    incoming = load_schema("IncomingConnection")["$defs"]["metadata"]
    assert outgoing == incoming


def test_schemas_come_from_the_repository_in_a_checkout() -> None:
    assert schema_dir() == REPO / "schemas"
    for file in SCHEMA_FILES.values():
        json.loads((REPO / "schemas" / file).read_text())


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_every_schema_gets_a_fast_predicate(name: str) -> None:
    assert compiled(name).fast is not None
