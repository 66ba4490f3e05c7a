"""A Vault session: lazy login, one read per secret, concurrent reads, write-back.

A plan may reference the same secret from many connections and many keys of
it (``…/parchment#consumer_secret``, ``…/parchment#password``). Each distinct
``(mount, path, version)`` is read once per :class:`Vault` object and every
``#key`` is served from that read; distinct paths are read concurrently by a
bounded thread pool. Nothing is cached across objects (or processes), and
writes and deletes drop the cached reads of their path.

The session logs in only when first used, so commands that need no secret
never touch Vault, and :meth:`Vault.close` revokes a token that erelease
obtained by logging in (a token the user gave is left alone).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import hvac

from erelease.errors import PermissionDenied, SecretsError
from erelease.model import Secret, SecretRef
from erelease.secrets.auth import KUBERNETES_TOKEN_PATH, Credentials, authenticate, revoke
from erelease.secrets.client import ClientConfig, build_client, client_config
from erelease.secrets.kv import KV, Values, check_version
from erelease.secrets.transport import Transport
from erelease.settings import VaultSettings

__all__ = ["SecretMeta", "Vault"]

log = logging.getLogger("erelease.secrets")

_Key = tuple[str, str, int | None]
K = TypeVar("K")
R = TypeVar("R")


@dataclass(frozen=True)
class SecretMeta:
    """What Vault says about a secret without giving its values."""

    current_version: int | None  # None on KV v1
    kv_version: int  # 1 or 2
    custom_metadata: dict[str, str]


def _check_ref(ref: SecretRef) -> None:
    segments = [ref.mount, *ref.path.split("/")]
    if any(s in ("", ".", "..") for s in segments) or "?" in ref.path or "#" in ref.path:
        raise SecretsError(f"invalid secret reference {ref}: empty or relative path segment")


def _missing_key(ref: SecretRef, read: Values, where: str) -> SecretsError:
    names = ", ".join(sorted(read.values)) or "none"
    version = f" (version {read.version})" if read.version is not None else ""
    return SecretsError(
        f"secret {ref.location}{version} in {where} has no key {ref.key!r}; keys present: {names}"
    )


class Vault:
    """A session with Vault/OpenBao for one command run (a context manager)."""

    def __init__(
        self,
        settings: VaultSettings,
        *,
        environ: Mapping[str, str] | None = None,
        concurrency: int = 16,
        kubernetes_token_path: Path = KUBERNETES_TOKEN_PATH,
    ) -> None:
        self._settings = settings
        self._environ: Mapping[str, str] = dict(os.environ if environ is None else environ)
        self._concurrency = max(1, concurrency)
        self._kubernetes_token_path = kubernetes_token_path
        self._config: ClientConfig = client_config(settings, self._environ)
        self._client: hvac.Client | None = None
        self._transport: Transport | None = None
        self._kv: KV | None = None
        self._credentials: Credentials | None = None
        self._lock = threading.RLock()
        self._cache: dict[_Key, Future[Values]] = {}
        self._reads = 0
        self._closed = False

    # -- session -----------------------------------------------------------------

    @property
    def address(self) -> str:
        return self._config.address

    @property
    def reads(self) -> int:
        """How many KV data reads (value reads) this session has performed."""
        return self._reads

    def _count_read(self) -> None:
        with self._lock:
            self._reads += 1

    def _session(self) -> KV:
        """Build the client and log in on first use."""
        with self._lock:
            if self._closed:
                raise SecretsError(f"the session with {self._config.describe()} is closed")
            if self._kv is None:
                client = build_client(self._config, pool_size=self._concurrency)
                transport = Transport(client, self._config)
                try:
                    self._credentials = authenticate(
                        transport,
                        self._settings.auth,
                        self._environ,
                        kubernetes_token_path=self._kubernetes_token_path,
                    )
                except BaseException:
                    client.adapter.close()
                    raise
                self._client, self._transport = client, transport
                self._kv = KV(transport, on_data_read=self._count_read)
            return self._kv

    def close(self) -> None:
        """Revoke a token erelease logged in for, and release connections. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._transport is not None and self._credentials is not None:
                revoke(self._transport, self._credentials)
            if self._client is not None:
                self._client.adapter.close()
            self._cache.clear()

    def __enter__(self) -> Vault:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- concurrency -------------------------------------------------------------

    def _parallel(self, fn: Callable[[K], R], items: list[K]) -> dict[K, Future[R]]:
        """Run ``fn`` over ``items`` on at most ``concurrency`` threads."""
        done: dict[K, Future[R]] = {}
        if len(items) <= 1 or self._concurrency == 1:
            for item in items:
                future: Future[R] = Future()
                try:
                    future.set_result(fn(item))
                except Exception as exc:
                    future.set_exception(exc)
                done[item] = future
            return done
        workers = min(self._concurrency, len(items))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="erelease-vault") as pool:
            for item in items:
                done[item] = pool.submit(fn, item)
        return done

    def _read_many(self, keys: list[_Key]) -> dict[_Key, Values]:
        """Each key read at most once per session; concurrent for distinct keys."""
        return {key: read.result() for key, read in self._read_futures(keys).items()}

    def _read_futures(self, keys: list[_Key]) -> dict[_Key, Future[Values]]:
        """Like :meth:`_read_many`, but each key's outcome, value or error, as a future."""
        kv = self._session()
        for mount in dict.fromkeys(k[0] for k in keys):
            kv.kv_version(mount)  # detect mounts once, before the threads fan out
        futures: dict[_Key, Future[Values]] = {}
        mine: list[_Key] = []
        with self._lock:
            for key in keys:
                if key not in self._cache:
                    self._cache[key] = Future()
                    mine.append(key)
                futures[key] = self._cache[key]
        try:
            results = self._parallel(lambda key: kv.read(*key), mine)
        except BaseException:  # Ctrl-C: leave no pending read behind for other callers
            with self._lock:
                for key in mine:
                    self._cache.pop(key, None)
                    futures[key].cancel()
            raise
        for key, result in results.items():
            exc = result.exception()
            if exc is None:
                values = result.result()
                futures[key].set_result(values)
                if key[2] is None and values.version is not None:
                    # The current version is also that numbered version: one read serves both.
                    with self._lock:
                        self._cache.setdefault((key[0], key[1], values.version), futures[key])
                continue
            with self._lock:
                self._cache.pop(key, None)  # a failed read may be retried later
            futures[key].set_exception(exc)
        return {key: futures[key] for key in keys}

    def _forget(self, ref: SecretRef) -> None:
        with self._lock:
            for key in [k for k in self._cache if k[:2] == (ref.mount, ref.path)]:
                del self._cache[key]

    # -- public operations ---------------------------------------------------------

    def versions(self, refs: Iterable[SecretRef]) -> dict[SecretRef, int | None]:
        """The KV version each reference resolves to (None on KV v1); never writes.

        A pinned ``?version=N`` must exist and be neither deleted nor destroyed;
        an unpinned one resolves to the current version, which must be readable;
        and each ``#key`` must be in it — metadata alone says a version exists,
        not what keys it holds, and a typo in a key would otherwise pass the plan,
        be applied, and fail only in the connectivity test. So each (path,
        version) is read once: the read gives the version and proves the keys
        (values stay wrapped, cached for the run, where the tests reuse them).
        Metadata is read only where a value read failed, to say precisely why
        (deleted, destroyed, pruned, never written), or for a reference without
        a key. A token whose policy grants metadata only still gets its versions;
        the key check is then left to the connectivity test (``secret_unavailable``).
        """
        refs = list(dict.fromkeys(refs))
        for ref in refs:
            _check_ref(ref)
        kv = self._session()
        v1 = {ref: kv.kv_version(ref.mount) == 1 for ref in refs}
        wanted = list(
            dict.fromkeys((r.mount, r.path, r.version) for r in refs if v1[r] or r.key is not None)
        )
        reads = self._read_futures(wanted)

        def failed(ref: SecretRef) -> bool:
            return (
                ref.key is None or reads[(ref.mount, ref.path, ref.version)].exception() is not None
            )

        paths = list(dict.fromkeys((r.mount, r.path) for r in refs if not v1[r] and failed(r)))
        metas = self._parallel(lambda loc: kv.metadata(*loc), paths) if paths else {}
        out: dict[SecretRef, int | None] = {}
        for ref in refs:
            read = reads.get((ref.mount, ref.path, ref.version))
            if not v1[ref] and failed(ref):
                meta = metas[(ref.mount, ref.path)].result()
                if meta is None:
                    raise SecretsError(
                        f"secret {ref.location} not found in {kv.where} (write it with "
                        f"`bao kv put -mount={ref.mount} {ref.path} KEY=VALUE`)"
                    )
                out[ref] = check_version(ref.location, meta, ref.version, kv.where)
                error = read.exception() if read is not None else None
                if error is not None and not isinstance(error, PermissionDenied):
                    raise error  # the metadata saw nothing wrong: the read's own reason
                continue
            assert read is not None
            found = read.result()  # KV v1: raises if the secret is absent or denied
            if ref.key is not None and ref.key not in found.values:
                raise _missing_key(ref, found, kv.where)
            out[ref] = None if v1[ref] else found.version
        return out

    def metadata(self, ref: SecretRef) -> SecretMeta | None:
        """Current version and custom metadata of a secret; None if nothing is there."""
        _check_ref(ref)
        kv = self._session()
        if kv.kv_version(ref.mount) == 1:
            found = kv.find(ref.mount, ref.path, None)
            return None if found is None else SecretMeta(None, 1, dict(found.custom_metadata))
        meta = kv.metadata(ref.mount, ref.path)
        if meta is None:
            return None
        current = meta.get("current_version")
        custom = meta.get("custom_metadata")
        return SecretMeta(
            current_version=current if isinstance(current, int) else None,
            kv_version=2,
            custom_metadata=(
                {str(k): str(v) for k, v in custom.items()} if isinstance(custom, Mapping) else {}
            ),
        )

    def resolve(self, refs: Iterable[SecretRef]) -> dict[SecretRef, Secret]:
        """The value behind each reference; each distinct path/version read once."""
        refs = list(dict.fromkeys(refs))
        for ref in refs:
            _check_ref(ref)
            if ref.key is None:
                raise SecretsError(
                    f"the reference to {ref.location} needs a #key to give one value"
                )
        reads = self._read_many(list(dict.fromkeys((r.mount, r.path, r.version) for r in refs)))
        out: dict[SecretRef, Secret] = {}
        for ref in refs:
            read = reads[(ref.mount, ref.path, ref.version)]
            value = read.values.get(ref.key or "")
            if value is None:
                raise _missing_key(ref, read, self._config.describe())
            out[ref] = value
        return out

    def read_all(self, ref: SecretRef) -> tuple[dict[str, Secret], int | None]:
        """Every key of a secret (incoming credentials) and the version read."""
        _check_ref(ref)
        key = (ref.mount, ref.path, ref.version)
        read = self._read_many([key])[key]
        return dict(read.values), read.version

    def write_credentials(
        self,
        ref: SecretRef,
        *,
        data: Mapping[str, Secret],
        cas: int,
        custom_metadata: Mapping[str, str],
    ) -> int | None:
        """Write minted credentials with check-and-set; return the new KV version.

        KV v2: ``cas=0`` creates only if nothing is there, ``cas=N`` replaces
        version N only; a lost race raises :class:`~erelease.errors.CasConflict`.
        The secret's custom metadata (``managed-by: erelease``, …) is set before
        the data of a new secret, after the data of a replaced one.
        KV v1 has neither versions nor check-and-set: the custom metadata is kept
        in the secret (see :data:`~erelease.secrets.kv.V1_METADATA_KEY`), an
        existing secret is replaced only if it carries the same marks (whatever
        ``cas`` says), else CasConflict; None is returned.
        """
        _check_ref(ref)
        if cas < 0:
            raise SecretsError("check-and-set version must be 0 (create) or the version read")
        kv = self._session()
        try:
            return kv.write(ref.mount, ref.path, data, cas=cas, custom_metadata=custom_metadata)
        finally:
            self._forget(ref)

    def delete_all(self, ref: SecretRef) -> None:
        """Delete the secret with all its versions and metadata; missing is fine."""
        _check_ref(ref)
        kv = self._session()
        try:
            kv.delete_all(ref.mount, ref.path)
        finally:
            self._forget(ref)

    def __repr__(self) -> str:
        return f"Vault({self._config.describe()!r})"
