"""erelease.yaml is read safely and checked against the settings schema, with positions."""

from __future__ import annotations

from pathlib import Path

import pytest

from erelease.config import check_settings, load_settings, load_settings_file
from erelease.errors import ConfigError, UsageError
from erelease.settings import parse_duration
from tests.unit.config.conftest import SETTINGS, ConfigDir


def test_good_settings(config: ConfigDir) -> None:
    path = config.settings(SETTINGS)
    data = load_settings_file(path)
    assert data["vault"]["auth"]["method"] == "approle"
    settings = load_settings(config.root, environ={})
    assert (settings.stack, settings.app_name, settings.tests.timeout) == (
        "district-42",
        "intMN",
        10.0,
    )
    assert settings.serve.token_ttl == 3600.0


def test_every_problem_with_its_position(config: ConfigDir) -> None:
    path = config.settings(
        "stack: district 42\n"
        "tests:\n"
        "  timeout: soon\n"
        "  concurrency: 0\n"
        "vault: {auth: {method: magic}}\n"
        "serve:\n"
        "  tokenTTL: 1h\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings_file(path)
    expected = [
        "erelease.yaml:1:8: error: stack: must be 1 to 100 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit",
        "erelease.yaml:3:12: error: tests.timeout: must be a duration like 250ms, 10s, 5m, "
        "1h or 1h30m, or a number of seconds",
        "erelease.yaml:4:16: error: tests.concurrency: must be ≥ 1",
        "erelease.yaml:5:24: error: vault.auth.method: must be one of: auto, token, approle, "
        'jwt, kubernetes (not "magic")',
        'erelease.yaml:7:3: error: serve.tokenTTL: unknown field; did you mean "tokenTtl"?',
    ]
    assert str(caught.value).splitlines() == expected
    assert [d.format() for d in caught.value.diagnostics] == expected


def test_a_yaml_boolean_where_a_boolean_is_expected_is_fine(config: ConfigDir) -> None:
    path = config.settings("vault:\n  skipVerify: yes\n")
    assert load_settings_file(path) == {"vault": {"skipVerify": True}}
    path = config.settings("vault:\n  skipVerify: yes please\n")
    with pytest.raises(ConfigError) as caught:
        load_settings_file(path)
    assert str(caught.value) == (
        "erelease.yaml:2:15: error: vault.skipVerify: must be true or false, not a string"
    )


def test_yaml_traps_and_hostile_input_in_settings(config: ConfigDir) -> None:
    _, found = check_settings(b"stack: no\nstack: yes\n", "erelease.yaml")
    assert [d.format() for d in found] == [
        'erelease.yaml:2:1: error: stack: duplicate key "stack" (first on line 1); YAML readers '
        "would silently keep only one",
        'erelease.yaml:2:8: error: stack: "yes" is read as the boolean true in YAML; '
        'quote it: "yes"',
    ]
    _, found = check_settings(b"stack: !!python/name:os.system x\n", "erelease.yaml")
    assert [d.message for d in found] == [
        "the tag !!python/name:os.system is not allowed: erelease reads plain YAML data only "
        "(strings, numbers, booleans, null, mappings and lists)"
    ]


def test_settings_must_be_one_mapping(config: ConfigDir) -> None:
    _, found = check_settings(b"- a\n", "erelease.yaml")
    assert [d.format() for d in found] == [
        "erelease.yaml:1:1: error: must be a mapping of settings (stack, state, incoming, vault, "
        "tests, serve)"
    ]
    _, found = check_settings(b"stack: a\n---\nstack: b\n", "erelease.yaml")
    assert [d.format() for d in found] == [
        "erelease.yaml:3:1: error: erelease.yaml must hold a single YAML document"
    ]


def test_empty_settings_file(config: ConfigDir) -> None:
    path = config.settings("# nothing yet\n")
    assert load_settings_file(path) == {}
    assert load_settings(config.root, environ={}).stack == config.root.name


def test_environment_overrides_are_parsed(config: ConfigDir) -> None:
    config.settings(SETTINGS)
    environ = {
        "ERELEASE_TESTS_CONCURRENCY": " 8 ",
        "ERELEASE_TESTS_RETRIES": "0",
        "ERELEASE_TESTS_TIMEOUT": "2m",
        "ERELEASE_SERVE_TOKEN_TTL": "30",
    }
    tests = load_settings(config.root, environ=environ).tests
    assert (tests.concurrency, tests.retries, tests.timeout) == (8, 0, 120.0)
    assert load_settings(config.root, environ=environ).serve.token_ttl == 30.0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ERELEASE_TESTS_CONCURRENCY", "lots", "must be an integer from 1 to 1024"),
        ("ERELEASE_TESTS_CONCURRENCY", "0", "must be an integer from 1 to 1024"),
        ("ERELEASE_TESTS_RETRIES", "11", "must be an integer from 0 to 10"),
        ("ERELEASE_TESTS_RETRIES", "2.5", "must be an integer from 0 to 10"),
        (
            "ERELEASE_TESTS_TIMEOUT",
            "soon",
            "must be a duration like 250ms, 10s, 5m, 1h or 1h30m, or a number of seconds",
        ),
        (
            "ERELEASE_SERVE_TOKEN_TTL",
            "-1h",
            "must be a duration like 250ms, 10s, 5m, 1h or 1h30m, or a number of seconds",
        ),
    ],
)
def test_a_bad_environment_override_is_a_config_error_naming_it(
    config: ConfigDir, name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(config.root, environ={name: value})
    assert str(caught.value) == f"{name}: {message}"  # the value itself is never echoed
    assert caught.value.exit_code == 1


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("250ms", 0.25), ("1.5m", 90.0), ("1h30m", 5400.0), ("1m500ms", 60.5)],
)
def test_durations_simple_and_compound(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1h30", "m", "1x", "", "1 h 30 m", "-1s"])
def test_durations_that_are_refused(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


def test_a_compound_duration_in_the_file_validates(tmp_path: Path) -> None:
    (tmp_path / "erelease.yaml").write_text("tests: {timeout: 1m30s}\n", encoding="utf-8")
    assert load_settings(tmp_path, environ={}).tests.timeout == 90.0
