"""Shared pytest configuration: real servers come from session fixtures."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.openbao",
    "tests.fixtures.postgres",
    "tests.fixtures.vendor",
]
