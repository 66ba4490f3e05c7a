"""The safe YAML reader: duplicate keys, tags, aliases, sizes, encodings, documents."""

from __future__ import annotations

import time

import pytest

from erelease.config import yamlload
from tests.unit.config.conftest import INCOMING, OUTGOING, ConfigDir, set_field

A = "connections.d/a.yaml"


@pytest.fixture(params=["libyaml", "pure-python"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the C composer and again with PyYAML's pure-Python one."""
    if request.param == "pure-python":
        monkeypatch.setattr(yamlload, "LOADER", yamlload.PurePythonLoader)
    return str(request.param)


def only(config: ConfigDir, content: str | bytes) -> list[str]:
    config.write("a.yaml", content)
    return config.lines()


def test_duplicate_key_names_both_lines(config: ConfigDir, loader: str) -> None:
    assert only(config, OUTGOING + "  uploadPort: 8443\n") == [
        f'{A}:15:3: error: spec.uploadPort: duplicate key "uploadPort" (first on line 9); '
        "YAML readers would silently keep only one"
    ]


def test_duplicate_top_level_key(config: ConfigDir, loader: str) -> None:
    assert only(config, OUTGOING + "kind: OutgoingConnection\n") == [
        f'{A}:15:1: error: kind: duplicate key "kind" (first on line 2); '
        "YAML readers would silently keep only one"
    ]


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ('!!python/object/apply:os.system ["true"]', "!!python/object/apply:os.system"),
        ("!!python/name:os.system", "!!python/name:os.system"),
        ("!custom value", "!custom"),
        ("!!binary aGVsbG8=", "!!binary"),
    ],
)
def test_tags_outside_the_core_types_are_refused(
    config: ConfigDir, loader: str, value: str, tag: str
) -> None:
    assert only(config, set_field(OUTGOING, "consumerKey", value)) == [
        f"{A}:11:16: error: spec.consumerKey: the tag {tag} is not allowed: erelease reads "
        "plain YAML data only (strings, numbers, booleans, null, mappings and lists)"
    ]


def test_core_tags_are_fine(config: ConfigDir, loader: str) -> None:
    text = set_field(OUTGOING, "consumerKey", "!!str 12345")
    text = set_field(text, "uploadPort", '!!int "443"')
    config.write("a.yaml", text)
    result = config.load()
    assert result.diagnostics == []
    assert result.connections[0].spec["consumerKey"] == "12345"
    assert result.connections[0].spec["uploadPort"] == 443


def test_billion_laughs_is_refused(config: ConfigDir, loader: str) -> None:
    bomb = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        bomb.append(f"{level}: &{level} [" + ",".join([f"*{previous}"] * 9) + "]")
    started = time.monotonic()
    lines = only(config, "\n".join(bomb) + "\n")
    assert time.monotonic() - started < 5
    assert lines == [
        f"{A}:4:4: error: d: aliases expand this document by more than 10000 nodes (refused "
        "as a possible billion-laughs attack)"
    ]


def test_recursive_alias_is_refused(config: ConfigDir, loader: str) -> None:
    assert only(config, "a: &loop [1, *loop]\n") == [
        f"{A}:1:4: error: a: an alias refers to a collection that contains it"
    ]


def test_aliases_and_merge_keys_work(config: ConfigDir, loader: str) -> None:
    text = set_field(OUTGOING, "authServer", "&host https://int-api.parchment.example")
    text = set_field(text, "uploadServer", "*host")
    text = text.replace("  uploadPort: 443\n", "  <<: {uploadPort: 443, consumerKey: ignored}\n")
    config.write("a.yaml", text)
    result = config.load()
    assert result.diagnostics == []
    spec = result.connections[0].spec
    assert spec["uploadServer"] == "https://int-api.parchment.example"
    assert (spec["uploadPort"], spec["consumerKey"]) == (443, "key-3235fffff69")


@pytest.mark.parametrize(
    "content",
    [
        "[" * 5000 + "]" * 5000,
        "- " * 5000 + "x",
        "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 300)),
    ],
    ids=["flow", "block-sequence", "block-mapping"],
)
def test_deep_nesting_is_refused_quickly(config: ConfigDir, loader: str, content: str) -> None:
    started = time.monotonic()
    lines = only(config, content)
    assert time.monotonic() - started < 5
    assert len(lines) == 1
    assert lines[0].endswith("error: collections are nested deeper than 100 levels")


def test_flow_bomb_filling_the_size_limit(config: ConfigDir) -> None:
    started = time.monotonic()
    lines = only(config, "[" * (yamlload.MAX_BYTES // 2) + "]" * (yamlload.MAX_BYTES // 2))
    assert time.monotonic() - started < 5
    assert lines == [f"{A}:1:101: error: collections are nested deeper than 100 levels"]


def test_files_over_one_mebibyte_are_refused(config: ConfigDir) -> None:
    assert only(config, "# " + "x" * yamlload.MAX_BYTES + "\n") == [
        f"{A}:1:1: error: the file is larger than 1 MiB; split it into several files"
    ]


def test_invalid_utf8_with_its_position(config: ConfigDir, loader: str) -> None:
    assert only(config, b"apiVersion: erelease/v1\nkind: Out\xffgoing\n") == [
        f"{A}:2:10: error: invalid UTF-8 (byte 0xff); save the file as UTF-8"
    ]


def test_utf16_is_not_utf8(config: ConfigDir) -> None:
    assert only(config, OUTGOING.encode("utf-16")) == [
        f"{A}:1:1: error: invalid UTF-8 (byte 0xff); save the file as UTF-8"
    ]


def test_control_characters_are_refused(config: ConfigDir, loader: str) -> None:
    assert only(config, "apiVersion: erelease/v1\nkind: Out\x07going\n") == [
        f"{A}:2:10: error: the control character U+0007 is not allowed in YAML"
    ]


def test_bom_and_crlf_are_fine(config: ConfigDir, loader: str) -> None:
    text = set_field(OUTGOING, "uploadPort", "70000")
    assert only(config, ("\ufeff" + text.replace("\n", "\r\n")).encode()) == [
        f"{A}:9:15: error: spec.uploadPort: must be ≤ 65535"
    ]
    assert only(config, ("\ufeff" + OUTGOING.replace("\n", "\r\n")).encode()) == []


def test_non_ascii_columns_count_characters(config: ConfigDir, loader: str) -> None:
    text = OUTGOING + "  vendor: Société Générale\n  allowInsecureHttp: oui\n"
    assert only(config, text) == [
        f"{A}:16:22: error: spec.allowInsecureHttp: must be true or false, not a string"
    ]


def test_several_documents_in_one_file(config: ConfigDir, loader: str) -> None:
    second = set_field(INCOMING, "rotation", "-1") if "rotation" in INCOMING else INCOMING
    text = OUTGOING + "---\n" + second + "  rotation: -1\n"
    config.write("a.yaml", text)
    result = config.load()
    assert [d.format() for d in result.diagnostics] == [
        f"{A}:22:13: error: spec.rotation: must be ≥ 0"
    ]
    assert [c.address for c in result.connections] == ["outgoing/parchment"]
    assert result.connections[0].line == 1


def test_empty_documents_and_comment_only_files_are_ignored(config: ConfigDir, loader: str) -> None:
    config.write("comments.yaml", "# nothing here yet\n# really\n")
    config.write("empty.yaml", "")
    config.write("docs.yaml", "---\n---\n# just a comment\n--- ~\n---\n" + OUTGOING + "---\n")
    result = config.load()
    assert result.diagnostics == []
    assert [(c.name, c.file, c.line) for c in result.connections] == [
        ("parchment", "connections.d/docs.yaml", 6)
    ]


def test_syntax_error_position(config: ConfigDir, loader: str) -> None:
    lines = only(config, "apiVersion: erelease/v1\nkind: [OutgoingConnection\nmetadata: {}\n")
    assert len(lines) == 1
    assert lines[0].startswith(f"{A}:3:")
    assert ": error: invalid YAML: " in lines[0]


def test_undefined_alias(config: ConfigDir, loader: str) -> None:
    lines = only(config, "a: *nowhere\n")
    assert len(lines) == 1
    assert lines[0].startswith(f"{A}:1:4: error: invalid YAML: found undefined alias")


def test_non_string_keys(config: ConfigDir, loader: str) -> None:
    text = OUTGOING.replace("  name: parchment\n", "  name: parchment\n  labels: {yes: x, 1: y}\n")
    assert only(config, text) == [
        f'{A}:5:12: error: metadata.labels.yes: the key "yes" is read as the boolean true in '
        'YAML; quote it: "yes"',
        f'{A}:5:20: error: metadata.labels.1: the key "1" is read as the number 1 in YAML; '
        'quote it: "1"',
    ]


def test_complex_key(config: ConfigDir, loader: str) -> None:
    assert only(config, "? [a, b]\n: c\n") == [
        f"{A}:1:1: error: kind: is required (add kind: OutgoingConnection or IncomingConnection)",
        f"{A}:1:3: error: a mapping key must be a plain string",
    ]
