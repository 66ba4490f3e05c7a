"""Find the config files, read each once, validate every document, add it all up.

:func:`load_config` is what ``erelease validate``, ``plan`` and ``apply`` call.
It reads every file exactly once — the same bytes feed the digest that a saved
plan uses to notice an edited config, and the parser — and it never raises
for a bad input: problems come back as diagnostics. Names must be unique per
kind across *all* files, which is why that check lives here rather than with
the per-document rules.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from erelease.config.diagnostics import ConfigResult, Diagnostic, display_path
from erelease.config.explain import problem_diagnostic, to_diagnostics
from erelease.config.settings_file import SETTINGS_FILE, check_settings
from erelease.config.validate import KIND_NAMES, check_connection
from erelease.config.yamlload import MAX_BYTES, parse_yaml
from erelease.config.yamlnodes import Document
from erelease.model import Connection, Kind
from erelease.settings import Settings

__all__ = ["CONNECTIONS_DIR", "load_config"]

CONNECTIONS_DIR = "connections.d"
_SUFFIXES = (".yaml", ".yml")
_KIND_LABEL = {kind: label for label, kind in KIND_NAMES.items()}


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while thousands of files are read.

    Reading allocates hundreds of thousands of small objects per thousand
    files, and the connections kept make the collector re-scan an ever longer
    list — a quarter of the run time. Nothing built here forms a reference
    cycle, so reference counting frees it all; the collector resumes after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Files:
    """The files to read: absolute path → (path shown to the user, path in the digest)."""

    def __init__(self, config_dir: str) -> None:
        self.config_dir = config_dir
        self.found: dict[str, tuple[str, str]] = {}
        self.diagnostics: list[Diagnostic] = []

    def _digest_name(self, absolute: str, shown: str) -> str:
        """The path relative to the config directory (stable whatever the cwd), else as shown."""
        if absolute.startswith(self.config_dir + os.sep):
            return absolute[len(self.config_dir) + 1 :].replace(os.sep, "/")
        return shown

    def walk(self, root: str, shown_root: str) -> None:
        """Every ``*.yaml``/``*.yml`` below ``root``, skipping hidden files and directories."""

        def failed(exc: OSError) -> None:
            where = display_path(exc.filename or root)
            self.diagnostics.append(
                Diagnostic(where, 1, 1, "error", "", f"cannot be read: {exc.strerror}")
            )

        prefix = "" if shown_root == "." else shown_root.rstrip("/") + "/"
        digest_root = self._digest_name(root, shown_root)
        digest_prefix = "" if root == self.config_dir else digest_root.rstrip("/") + "/"
        for dirpath, dirnames, filenames in os.walk(root, onerror=failed):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            relative = os.path.relpath(dirpath, root)
            base = "" if relative == "." else relative.replace(os.sep, "/") + "/"
            for name in filenames:
                if name.endswith(_SUFFIXES) and not name.startswith("."):
                    entry = (prefix + base + name, digest_prefix + base + name)
                    self.found.setdefault(os.path.join(dirpath, name), entry)

    def add(self, given: Path) -> None:
        text = os.fspath(given)
        absolute = os.path.abspath(text)
        if os.path.isdir(absolute):
            self.walk(absolute, display_path(text))
        elif os.path.exists(absolute):
            shown = display_path(text)
            self.found.setdefault(absolute, (shown, self._digest_name(absolute, shown)))
        else:
            self.diagnostics.append(
                Diagnostic(text, 1, 1, "error", "", "no such file or directory")
            )

    def ordered(self) -> list[tuple[str, str, str]]:
        """(absolute, shown, digest name), sorted by the path shown, directory by directory."""
        items = [(absolute, shown, name) for absolute, (shown, name) in self.found.items()]
        return sorted(items, key=lambda item: item[1].split("/"))


def _read(absolute: str) -> bytes | str:
    """The file's bytes, or why they cannot be read (unreadable, over MAX_BYTES)."""
    try:
        with open(absolute, "rb") as handle:
            info = os.fstat(handle.fileno())
            if info.st_size > MAX_BYTES:
                return "the file is larger than 1 MiB; split it into several files"
            if stat.S_ISREG(info.st_mode):
                # read() sizes its buffer from fstat; read(n) would allocate n bytes first
                return handle.read()
            return handle.read(MAX_BYTES + 1)  # a pipe or device: bounded, and parse_yaml refuses
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"


def _digest_entry(name: str, data: bytes) -> bytes:
    return name.encode("utf-8", "surrogateescape") + b"\0" + str(len(data)).encode() + b"\0" + data


def load_config(
    config_dir: Path,
    *,
    paths: Sequence[Path] | None = None,
    settings: Settings | None = None,
) -> ConfigResult:
    """Validate ``connections.d/`` of ``config_dir`` (or just ``paths``).

    ``erelease.yaml`` counts towards the digest, but its problems are reported
    by :func:`~erelease.config.load_settings_file` (which every command runs
    first), not here — so they are never reported twice; given in ``paths``, it
    is left to that function. Without ``settings``, its ``incoming.appName``
    is still used as the default appName.
    """
    with _collector_paused():
        return _load(config_dir, paths, settings)


def _load(
    config_dir: Path, paths: Sequence[Path] | None, settings: Settings | None
) -> ConfigResult:
    root = os.path.abspath(config_dir)
    files = _Files(root)
    settings_path = os.path.join(root, SETTINGS_FILE)
    if not os.path.isdir(root):
        files.diagnostics.append(
            Diagnostic(display_path(config_dir), 1, 1, "error", "", "is not a directory")
        )
    if paths is None:
        connections = os.path.join(root, CONNECTIONS_DIR)
        if os.path.isdir(connections):
            files.walk(connections, display_path(connections))
    else:
        for given in paths:
            if os.path.abspath(given) != settings_path:
                files.add(given)
    diagnostics = files.diagnostics
    digest = hashlib.sha256()
    default_app_name = settings.app_name if settings is not None else None
    if os.path.isfile(settings_path):
        raw = _read(settings_path)
        shown = display_path(settings_path)
        if isinstance(raw, str):
            diagnostics.append(Diagnostic(shown, 1, 1, "error", "", raw))
        else:
            digest.update(_digest_entry(SETTINGS_FILE, raw))
            if settings is None:
                default_app_name = _app_name(check_settings(raw, shown)[0])
    connections_found: list[Connection] = []
    # (kind, name) -> where it was first defined: (shown path, raw bytes, document index)
    first_seen: dict[tuple[str, str], tuple[str, bytes, int]] = {}
    ordered = files.ordered()
    for absolute, shown, digest_name in ordered:
        raw = _read(absolute)
        if isinstance(raw, str):
            diagnostics.append(Diagnostic(shown, 1, 1, "error", "", raw))
            continue
        digest.update(_digest_entry(digest_name, raw))
        documents, problems = parse_yaml(raw)
        if problems:
            diagnostics += [problem_diagnostic(problem, shown) for problem in problems]
        for document in documents:
            checked = check_connection(document, file=shown, default_app_name=default_app_name)
            if checked.findings:
                diagnostics += to_diagnostics(checked.findings, document, shown)
            connection = checked.connection
            if checked.kind is not None and checked.name is not None:
                key = (checked.kind, checked.name)
                first = first_seen.get(key)
                if first is None:
                    first_seen[key] = (shown, raw, document.index)
                else:
                    diagnostics.append(
                        _duplicate(checked.kind, checked.name, document, shown, first)
                    )
                    connection = None
            if connection is not None:
                connections_found.append(connection)
    return ConfigResult(
        connections=sorted(connections_found, key=lambda c: (c.kind, c.name)),
        diagnostics=sorted(set(diagnostics), key=Diagnostic.sort_key),
        files=[Path(absolute) for absolute, _, _ in ordered],
        digest=digest.hexdigest(),
    )


def _duplicate(
    kind: Kind, name: str, document: Document, shown: str, first: tuple[str, bytes, int]
) -> Diagnostic:
    """The second definition of a name, pointing at the first (found again only now)."""
    first_shown, first_raw, first_index = first
    where = first_shown
    for earlier in parse_yaml(first_raw)[0]:
        if earlier.index == first_index:
            line, col = earlier.where(("metadata", "name"))
            where = f"{first_shown}:{line}:{col}"
    line, col = document.where(("metadata", "name"))
    message = f'duplicate {_KIND_LABEL[kind]} name "{name}"; first defined at {where}'
    return Diagnostic(shown, line, col, "error", "metadata.name", message)


def _app_name(data: Any) -> str | None:
    incoming = data.get("incoming") if isinstance(data, dict) else None
    name = incoming.get("appName") if isinstance(incoming, dict) else None
    return name if isinstance(name, str) else None
