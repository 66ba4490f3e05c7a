"""Shared pytest configuration: real servers come from session fixtures."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.openbao",
    "tests.fixtures.postgres",
    "tests.fixtures.vendor",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run ``forks`` tests first: code that forks refuses to while other threads
    run, and session fixtures (the vendor simulators) serve on threads."""
    items.sort(key=lambda item: item.get_closest_marker("forks") is None)
