"""Every setting of erelease.yaml has its ERELEASE_* variable, named by one rule."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from erelease.config.schemas import compiled
from erelease.config.settings_file import load_settings

ROOT = Path(__file__).resolve().parents[3]


def _leaves(schema: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """The dotted path of every single-valued setting the schema describes."""
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        if "properties" in sub:
            yield from _leaves(sub, path + ".")
        else:
            yield path


def _variable(path: str) -> str:
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", path.replace(".", "_"))
    return "ERELEASE_" + snake.upper()


SETTINGS = sorted(_leaves(compiled("settings").schema))


def test_the_rule_names_the_documented_variables() -> None:
    assert _variable("incoming.baseUrl") == "ERELEASE_INCOMING_BASE_URL"
    assert _variable("vault.auth.tokenEnv") == "ERELEASE_VAULT_AUTH_TOKEN_ENV"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`tests.caBundle` →\n`ERELEASE_TESTS_CA_BUNDLE`" in readme


@pytest.mark.parametrize("path", SETTINGS)
def test_every_setting_can_come_from_its_variable(path: str, tmp_path: Path) -> None:
    """A value set only in the environment changes what the loaded settings say."""
    baseline = repr(load_settings(tmp_path, environ={}))
    value = {
        "stack": "from-env",
        "state": "sqlite:///from-env.db",
        "incoming.baseUrl": "https://env.example.org/district",
        "incoming.appName": "fromEnv",
        "vault.address": "https://vault.env.example:8200",
        "vault.skipVerify": "true",
        "vault.timeout": "42s",
        "vault.auth.method": "approle",
        "tests.concurrency": "7",
        "tests.timeout": "42s",
        "tests.retries": "5",
        "serve.tokenTtl": "42m",
    }.get(path, "from-env-value")
    loaded = repr(load_settings(tmp_path, environ={_variable(path): value}))
    assert loaded != baseline, f"{_variable(path)} does not set {path}"
