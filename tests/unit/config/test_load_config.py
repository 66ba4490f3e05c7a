"""load_config as a whole: discovery, paths, the digest, the result and the normal form."""

from __future__ import annotations

from pathlib import Path

import pytest

from erelease.config import ConfigResult, Diagnostic, field_path, load_config
from erelease.errors import ConfigError
from erelease.model import SecretRef
from erelease.settings import Settings
from tests.unit.config.conftest import INCOMING, OUTGOING, ConfigDir, set_field


def test_diagnostic_format_and_dict() -> None:
    d = Diagnostic("connections.d/a.yaml", 3, 5, "error", "spec.uploadPort", "must be ≤ 65535")
    assert d.format() == "connections.d/a.yaml:3:5: error: spec.uploadPort: must be ≤ 65535"
    assert str(d) == d.format()
    assert d.to_dict() == {
        "path": "connections.d/a.yaml",
        "line": 3,
        "col": 5,
        "severity": "error",
        "field": "spec.uploadPort",
        "message": "must be ≤ 65535",
    }
    assert Diagnostic("a.yaml", 1, 1, "warning", "", "odd").format() == "a.yaml:1:1: warning: odd"


def test_field_path() -> None:
    assert field_path(("spec", "uploadPort")) == "spec.uploadPort"
    assert field_path(("items", 0, "name")) == "items[0].name"
    assert field_path(("metadata", "labels", "team.name")) == 'metadata.labels["team.name"]'


def test_discovery_is_recursive_sorted_and_skips_hidden_and_other_files(config: ConfigDir) -> None:
    config.write("b.yaml", set_field(OUTGOING, "name", "b"))
    config.write("a/z.yml", set_field(OUTGOING, "name", "az"))
    config.write("a-b.yaml", set_field(OUTGOING, "name", "ab"))
    config.write(".hidden.yaml", "not: [valid")
    config.write(".git/x.yaml", "not: [valid")
    config.write("notes.txt", "not: [valid")
    result = config.load()
    assert result.diagnostics == []
    assert [p.relative_to(config.root).as_posix() for p in result.files] == [
        "connections.d/a/z.yml",
        "connections.d/a-b.yaml",
        "connections.d/b.yaml",
    ]
    assert all(p.is_absolute() for p in result.files)


def test_linked_directories_are_followed_and_loops_walked_once(config: ConfigDir) -> None:
    shared = config.root / "shared"
    (shared / "deeper").mkdir(parents=True)
    (shared / "deeper" / "s.yaml").write_text(set_field(OUTGOING, "name", "shared"))
    config.write("own.yaml", set_field(OUTGOING, "name", "own"))
    connections = config.root / "connections.d"
    (connections / "linked").symlink_to(shared, target_is_directory=True)
    (connections / "self").symlink_to(connections, target_is_directory=True)  # a loop
    (shared / "up").symlink_to(config.root, target_is_directory=True)  # a loop via the root
    result = config.load()
    assert result.diagnostics == []
    assert [c.name for c in result.connections] == ["own", "shared"]
    assert [p.relative_to(config.root).as_posix() for p in result.files] == [
        "connections.d/linked/deeper/s.yaml",
        "connections.d/own.yaml",
    ]


def test_connections_sorted_by_kind_and_name(config: ConfigDir) -> None:
    config.write("1.yaml", set_field(OUTGOING, "name", "zeta"))
    config.write("2.yaml", set_field(OUTGOING, "name", "alpha"))
    config.write("3.yaml", INCOMING)
    assert [c.address for c in config.load().connections] == [
        "incoming/cfnc",
        "outgoing/alpha",
        "outgoing/zeta",
    ]


def test_diagnostics_sorted_by_path_line_col(config: ConfigDir) -> None:
    config.write("b.yaml", set_field(OUTGOING, "uploadPort", "0"))
    config.write("a.yaml", set_field(set_field(OUTGOING, "uploadPort", "0"), "name", "A"))
    keys = [(d.path, d.line, d.col) for d in config.load().diagnostics]
    assert keys == sorted(keys)
    assert len(keys) == 3


def test_no_connections_directory_is_an_empty_valid_config(config: ConfigDir) -> None:
    result = config.load()
    assert (result.ok, result.connections, result.diagnostics, result.files) == (True, [], [], [])


def test_missing_config_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = load_config(tmp_path / "nope")
    assert [d.format() for d in result.diagnostics] == ["nope:1:1: error: is not a directory"]


def test_paths_restrict_to_files_and_directories(config: ConfigDir) -> None:
    config.write("a.yaml", set_field(OUTGOING, "uploadPort", "0"))
    config.write("sub/b.yaml", set_field(OUTGOING, "name", "b"))
    config.write("sub/deeper/c.yaml", set_field(OUTGOING, "name", "c"))
    result = config.load(paths=[Path("connections.d/sub")])
    assert result.diagnostics == []
    assert [c.name for c in result.connections] == ["b", "c"]
    result = config.load(paths=[Path("connections.d/a.yaml"), Path("missing.yaml")])
    assert [d.format() for d in result.diagnostics] == [
        "connections.d/a.yaml:9:15: error: spec.uploadPort: must be ≥ 1",
        "missing.yaml:1:1: error: no such file or directory",
    ]


def test_a_path_given_twice_is_read_once(config: ConfigDir) -> None:
    config.write("a.yaml", OUTGOING)
    result = config.load(paths=[Path("connections.d/a.yaml"), Path("connections.d")])
    assert result.diagnostics == []
    assert len(result.files) == 1


def test_paths_outside_the_working_directory_are_shown_as_given(
    config: ConfigDir, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "x.yaml"
    elsewhere.write_text(set_field(OUTGOING, "uploadPort", "0"))
    [diagnostic] = config.load(paths=[elsewhere]).diagnostics
    assert diagnostic.path == str(elsewhere)


def test_the_settings_file_is_left_to_load_settings(config: ConfigDir) -> None:
    config.settings("stack: district 42\n")
    config.write("a.yaml", OUTGOING)
    assert config.lines() == []
    assert config.lines(paths=[Path("erelease.yaml")]) == []


def test_digest_covers_every_config_byte_and_name(config: ConfigDir) -> None:
    path = config.write("a.yaml", OUTGOING)
    first = config.load().digest
    assert config.load().digest == first
    path.write_text(OUTGOING + "# a comment\n")
    second = config.load().digest
    assert second != first
    path.rename(path.with_name("b.yaml"))
    third = config.load().digest
    assert third not in (first, second)
    config.settings("stack: district-42\n")
    assert config.load().digest not in (first, second, third)


def test_digest_does_not_depend_on_the_working_directory(
    config: ConfigDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.write("a.yaml", OUTGOING)
    here = config.load().digest
    monkeypatch.chdir(config.root / "connections.d")
    assert load_config(config.root).digest == here


def test_connection_records_where_it_was_defined(config: ConfigDir) -> None:
    config.write("a.yaml", "# header comment\n\n" + OUTGOING)
    [connection] = config.load().connections
    assert (connection.file, connection.line) == ("connections.d/a.yaml", 3)


def test_outgoing_normal_form(config: ConfigDir) -> None:
    text = set_field(OUTGOING, "authServer", "HTTPS://Int-API.Parchment.Example:443/")
    text = set_field(text, "uploadServer", "https://Upload.Parchment.Example:8443")
    text = set_field(text, "uploadPort", "8443")
    text = set_field(text, "authPath", "send-library-api/v1/oauth/token")
    text = set_field(text, "uploadPath", "//upload")
    text = text.replace(
        "  name: parchment\n", "  name: parchment\n  labels: {vendor: parchment}\n  protect: true\n"
    )
    config.write("a.yaml", text)
    result = config.load()
    assert result.diagnostics == []
    [connection] = result.connections
    assert dict(connection.spec) == {
        "authServer": "https://int-api.parchment.example",
        "authPath": "/send-library-api/v1/oauth/token",
        "uploadServer": "https://upload.parchment.example:8443",
        "uploadPort": 8443,
        "uploadPath": "/upload",
        "consumerKey": "key-3235fffff69",
        "consumerSecret": SecretRef("secret", "erelease/parchment", "consumer_secret"),
        "username": "transcripts@district42.example.org",
        "password": SecretRef("secret", "erelease/parchment", "password"),
        "grantType": "password",
        "clientAuth": "basic",
        "allowInsecureHttp": False,
    }
    assert list(connection.spec) == list(dict(connection.spec))
    assert (connection.labels, connection.protect) == ({"vendor": "parchment"}, True)


def test_incoming_normal_form_and_app_name_defaults(config: ConfigDir) -> None:
    config.write("a.yaml", INCOMING)
    [connection] = config.load().connections
    assert dict(connection.spec) == {
        "appName": "cfnc",
        "credentials": SecretRef("secret", "erelease/incoming/cfnc"),
        "rotation": 0,
    }
    config.settings("incoming:\n  appName: intNC\n")
    assert config.load().connections[0].spec["appName"] == "intNC"
    settings = Settings(config_dir=config.root, stack="s", app_name="intMN")
    assert config.load(settings=settings).connections[0].spec["appName"] == "intMN"
    config.write("a.yaml", INCOMING + "  provider: CFNC\n  appName: own\n  rotation: 2\n")
    spec = config.load().connections[0].spec
    assert (spec["provider"], spec["appName"], spec["rotation"]) == ("CFNC", "own", 2)


def test_result_ok_with_only_warnings(config: ConfigDir) -> None:
    text = set_field(OUTGOING, "authServer", "http://int-api.parchment.example")
    config.write("a.yaml", text + "  allowInsecureHttp: true\n")
    result = config.load()
    assert result.ok and result.warnings and not result.errors
    result.raise_for_errors()


def test_raise_for_errors_lists_every_error(config: ConfigDir) -> None:
    config.write("a.yaml", set_field(set_field(OUTGOING, "uploadPort", "0"), "name", "A"))
    result = config.load()
    assert not result.ok
    with pytest.raises(ConfigError) as caught:
        result.raise_for_errors()
    assert str(caught.value).splitlines() == [d.format() for d in result.diagnostics]
    assert caught.value.diagnostics == result.errors


def test_unreadable_file(config: ConfigDir) -> None:
    (config.root / "connections.d").mkdir()
    (config.root / "connections.d" / "a.yaml").symlink_to(config.root / "gone.yaml")
    assert config.lines() == [
        "connections.d/a.yaml:1:1: error: cannot be read: No such file or directory"
    ]


def test_result_type(config: ConfigDir) -> None:
    assert isinstance(config.load(), ConfigResult)
