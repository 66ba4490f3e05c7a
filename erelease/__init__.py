"""erelease — eTranscript connections as code.

Districts declare their outgoing (vendor) and incoming (provider) eTranscript
connections as YAML; erelease validates them, resolves secrets from Vault or
OpenBao, reconciles them with a registry (the state store) and tests them.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
