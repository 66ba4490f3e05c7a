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
from erelease.errors import ConfigError
from erelease.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_STATE,
    ServeSettings,
    Settings,
    TestSettings,
    VaultAuthSettings,
    VaultSettings,
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


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{SETTINGS_FILE}: {name}: must be a mapping")
    return value


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
            cacert=vault.get("caCert"),
            capath=vault.get("caPath"),
            client_cert=vault.get("clientCert"),
            client_key=vault.get("clientKey"),
            skip_verify=vault.get("skipVerify"),
            timeout=parse_duration(vault.get("timeout", 10), what="vault.timeout"),
            auth=VaultAuthSettings(
                method=str(pick("ERELEASE_VAULT_AUTH_METHOD", auth.get("method", "auto"))),
                role=pick("ERELEASE_VAULT_AUTH_ROLE", auth.get("role")),
                mount=pick("ERELEASE_VAULT_AUTH_MOUNT", auth.get("mount")),
                token_env=auth.get("tokenEnv"),
                audience=auth.get("audience"),
            ),
        ),
        tests=TestSettings(
            concurrency=int(pick("ERELEASE_TESTS_CONCURRENCY", tests.get("concurrency", 32))),
            timeout=parse_duration(
                pick("ERELEASE_TESTS_TIMEOUT", tests.get("timeout", 10)), what="tests.timeout"
            ),
            retries=int(pick("ERELEASE_TESTS_RETRIES", tests.get("retries", 2))),
            ca_bundle=pick("ERELEASE_TESTS_CA_BUNDLE", tests.get("caBundle")),
        ),
        serve=ServeSettings(
            transcripts=config_dir
            / str(pick("ERELEASE_SERVE_TRANSCRIPTS", serve.get("transcripts", "transcripts"))),
            token_ttl=parse_duration(
                pick("ERELEASE_SERVE_TOKEN_TTL", serve.get("tokenTtl", 3600)),
                what="serve.tokenTtl",
            ),
        ),
    )
    if state:
        settings = replace(settings, state=state)
    return settings
