"""Load ``erelease.yaml`` and merge ``ERELEASE_*`` variables and flags over it.

Precedence (SPEC §4): command-line flag > ``ERELEASE_*`` environment variable >
``erelease.yaml`` > default. The file is read with the same safe YAML reader
as the connections and checked against ``schemas/settings.schema.json``, so a
typo in a setting is reported with its line and column instead of being
silently ignored.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from erelease.config.diagnostics import Diagnostic, display_path
from erelease.config.explain import explain_errors, problem_diagnostic, to_diagnostics
from erelease.config.schemas import compiled
from erelease.config.validate import reading_findings
from erelease.config.yamlload import parse_yaml
from erelease.errors import ConfigError, UsageError
from erelease.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_STATE,
    ServeSettings,
    Settings,
    TestSettings,
    VaultAuthSettings,
    VaultSettings,
    parse_bool,
    parse_duration,
)

__all__ = ["SETTINGS_FILE", "check_settings", "load_settings", "load_settings_file"]

SETTINGS_FILE = "erelease.yaml"


def check_settings(data: bytes, path: str) -> tuple[dict[str, Any], list[Diagnostic]]:
    """The settings in ``data`` and every problem with them (never raises for bad input)."""
    documents, problems = parse_yaml(data)
    diagnostics = [problem_diagnostic(problem, path) for problem in problems]
    for extra in documents[1:]:
        message = f"{SETTINGS_FILE} must hold a single YAML document"
        diagnostics.append(Diagnostic(path, extra.line, extra.col, "error", "", message))
    if not documents:
        return {}, diagnostics
    document = documents[0]
    if not isinstance(document.data, dict):
        message = "must be a mapping of settings (stack, state, incoming, vault, tests, serve)"
        diagnostics.append(Diagnostic(path, document.line, document.col, "error", "", message))
        return {}, diagnostics
    try:
        schema_findings = explain_errors(
            compiled("settings").iter_errors(document.data), document, ()
        )
    except RecursionError:
        message = "the settings are nested too deeply to validate"
        diagnostics.append(Diagnostic(path, document.line, document.col, "error", "", message))
        return {}, diagnostics
    error_paths = {finding.path for finding in schema_findings}
    findings = reading_findings(document, error_paths) + schema_findings
    diagnostics += to_diagnostics(findings, document, path)
    return document.data, sorted(diagnostics, key=Diagnostic.sort_key)


def load_settings_file(path: Path) -> Mapping[str, Any]:
    """Parse and validate ``erelease.yaml``; ConfigError lists every problem, one per line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{display_path(path)}: cannot be read: {exc.strerror}") from exc
    settings, diagnostics = check_settings(data, display_path(path))
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise ConfigError("\n".join(d.format() for d in errors), diagnostics=errors)
    return settings


_DURATION_MESSAGE = "must be a duration like 250ms, 10s, 5m, 1h or 1h30m, or a number of seconds"


def _env_int(env_name: str, text: str, section: str, key: str) -> int:
    """An integer setting from the environment, in the range the settings schema gives it."""
    rule = compiled("settings").schema["properties"][section]["properties"][key]
    low, high = rule.get("minimum"), rule.get("maximum")
    message = f"{env_name}: must be an integer from {low} to {high}"
    try:
        value = int(text.strip())
    except ValueError:
        raise ConfigError(message) from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(message)
    return value


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{SETTINGS_FILE}: {name}: must be a mapping")
    return value


def _flag(env_name: str, env: Mapping[str, str], file_value: Any) -> bool | None:
    """A boolean setting: ``env_name`` (true/false, 1/0, yes/no) over the file's value."""
    text = env.get(env_name, "").strip()
    if not text:
        return file_value if isinstance(file_value, bool) else None
    parsed = parse_bool(text)
    if parsed is None:
        raise ConfigError(f"{env_name}: must be true or false")
    return parsed


def _read_file(config_dir: Path) -> Mapping[str, Any]:
    path = config_dir / SETTINGS_FILE
    if not path.is_file():
        return {}
    return load_settings_file(path)


def load_settings(
    config_dir: Path,
    *,
    environ: Mapping[str, str] | None = None,
    state: str | None = None,
) -> Settings:
    """Read ``erelease.yaml`` (if any) and apply ``ERELEASE_*`` and flag overrides."""
    env = os.environ if environ is None else environ
    config_dir = config_dir.resolve()
    data = _read_file(config_dir)
    incoming = _section(data, "incoming")
    vault = _section(data, "vault")
    auth = _section(vault, "auth")
    tests = _section(data, "tests")
    serve = _section(data, "serve")

    def pick(env_name: str, file_value: Any) -> Any:
        return env.get(env_name) if env.get(env_name) not in (None, "") else file_value

    def pick_int(env_name: str, section: str, key: str, file_value: Any) -> int:
        if env.get(env_name) in (None, ""):
            return int(file_value)
        return _env_int(env_name, env[env_name], section, key)

    def pick_duration(env_name: str, what: str, file_value: Any) -> float:
        if env.get(env_name) in (None, ""):
            return parse_duration(file_value, what=what)
        try:
            return parse_duration(env[env_name], what=what)
        except UsageError:
            # The value is not echoed: an environment variable may hold anything.
            raise ConfigError(f"{env_name}: {_DURATION_MESSAGE}") from None

    settings = Settings(
        config_dir=config_dir,
        stack=str(pick("ERELEASE_STACK", data.get("stack") or config_dir.name)),
        state=str(pick("ERELEASE_STATE", data.get("state") or DEFAULT_STATE)),
        base_url=str(
            pick("ERELEASE_INCOMING_BASE_URL", incoming.get("baseUrl") or DEFAULT_BASE_URL)
        ).rstrip("/"),
        app_name=pick("ERELEASE_INCOMING_APP_NAME", incoming.get("appName")),
        vault=VaultSettings(
            address=pick("ERELEASE_VAULT_ADDRESS", vault.get("address")),
            namespace=pick("ERELEASE_VAULT_NAMESPACE", vault.get("namespace")),
            cacert=pick("ERELEASE_VAULT_CA_CERT", vault.get("caCert")),
            capath=pick("ERELEASE_VAULT_CA_PATH", vault.get("caPath")),
            client_cert=pick("ERELEASE_VAULT_CLIENT_CERT", vault.get("clientCert")),
            client_key=pick("ERELEASE_VAULT_CLIENT_KEY", vault.get("clientKey")),
            skip_verify=_flag("ERELEASE_VAULT_SKIP_VERIFY", env, vault.get("skipVerify")),
            timeout=pick_duration(
                "ERELEASE_VAULT_TIMEOUT", "vault.timeout", vault.get("timeout", 10)
            ),
            auth=VaultAuthSettings(
                method=str(pick("ERELEASE_VAULT_AUTH_METHOD", auth.get("method", "auto"))),
                role=pick("ERELEASE_VAULT_AUTH_ROLE", auth.get("role")),
                mount=pick("ERELEASE_VAULT_AUTH_MOUNT", auth.get("mount")),
                token_env=pick("ERELEASE_VAULT_AUTH_TOKEN_ENV", auth.get("tokenEnv")),
                audience=pick("ERELEASE_VAULT_AUTH_AUDIENCE", auth.get("audience")),
            ),
        ),
        tests=TestSettings(
            concurrency=pick_int(
                "ERELEASE_TESTS_CONCURRENCY", "tests", "concurrency", tests.get("concurrency", 32)
            ),
            timeout=pick_duration(
                "ERELEASE_TESTS_TIMEOUT", "tests.timeout", tests.get("timeout", 10)
            ),
            retries=pick_int("ERELEASE_TESTS_RETRIES", "tests", "retries", tests.get("retries", 2)),
            ca_bundle=pick("ERELEASE_TESTS_CA_BUNDLE", tests.get("caBundle")),
        ),
        serve=ServeSettings(
            transcripts=config_dir
            / str(pick("ERELEASE_SERVE_TRANSCRIPTS", serve.get("transcripts", "transcripts"))),
            token_ttl=pick_duration(
                "ERELEASE_SERVE_TOKEN_TTL", "serve.tokenTtl", serve.get("tokenTtl", 3600)
            ),
        ),
    )
    if state:
        settings = replace(settings, state=state)
    return settings
