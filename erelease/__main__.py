"""Allow ``python -m erelease``."""

from __future__ import annotations

from erelease.cli import main

if __name__ == "__main__":  # pragma: no cover - exercised through subprocess tests
    main()
