"""The configuration layer: ``connections.d/`` and ``erelease.yaml`` in, connections out.

:func:`load_config` reads and validates every connection file and returns a
:class:`ConfigResult` — the valid connections in normal form, every problem as
a :class:`Diagnostic` with file, line and column, and a digest of all config
bytes. :func:`load_settings` reads ``erelease.yaml`` and the ``ERELEASE_*``
environment. Nothing here talks to the network, Vault or the state store.
"""

from __future__ import annotations

from erelease.config.diagnostics import ConfigResult, Diagnostic, Severity, field_path
from erelease.config.loader import CONNECTIONS_DIR, load_config
from erelease.config.settings_file import (
    SETTINGS_FILE,
    check_settings,
    load_settings,
    load_settings_file,
)
from erelease.config.validate import API_VERSION, KIND_NAMES

__all__ = [
    "API_VERSION",
    "CONNECTIONS_DIR",
    "KIND_NAMES",
    "SETTINGS_FILE",
    "ConfigResult",
    "Diagnostic",
    "Severity",
    "check_settings",
    "field_path",
    "load_config",
    "load_settings",
    "load_settings_file",
]
