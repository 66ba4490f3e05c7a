"""Secrets from Vault and OpenBao: references resolved, credentials written back.

erelease keeps no secret in Git, in its registry or in its output. Connections
reference values in a KV mount (``ref+vault://secret/erelease/parchment#password``)
and this package turns those references into :class:`~erelease.model.Secret`
values, reports the KV version each one resolves to (what a plan records), and
writes the credentials minted for incoming connections with check-and-set.

Layout, one concern per module:

- :mod:`.client` — the hvac client, every setting resolved from settings, ``BAO_*``, ``VAULT_*``
- :mod:`.auth` — token, AppRole, JWT (CI id tokens), Kubernetes; revoking login tokens
- :mod:`.transport` — one HTTP call with retries; every failure becomes one SecretsError
- :mod:`.kv` — KV v1 and v2 behind the same operations
- :mod:`.vault` — the :class:`Vault` session the engine uses

Every failure is a :class:`~erelease.errors.SecretsError` (or its
:class:`~erelease.errors.CasConflict`) whose message names the Vault address,
mount, path and key, and never a secret value or Vault's raw error text.
"""

from __future__ import annotations

from erelease.secrets.vault import SecretMeta, Vault

__all__ = ["SecretMeta", "Vault"]
