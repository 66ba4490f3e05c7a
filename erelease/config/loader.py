"""Find the config files, read each once, validate every document, add it all up.

:func:`load_config` is what ``erelease validate``, ``plan`` and ``apply`` call.
It reads every file exactly once — the same bytes feed the digest that a saved
plan uses to notice an edited config, and the parser — and it never raises
for a bad input: problems come back as diagnostics. Names must be unique per
kind across *all* files, which is why that check lives here rather than with
the per-document rules.

Above a thousand files or so the reading, parsing and validating is spread
over the usable cores (:mod:`erelease.config.parallel`, ``ERELEASE_JOBS``):
each process validates contiguous blocks of the sorted files and hands back,
per file, the bytes it read, its diagnostics and its documents' connections.
Everything that depends on more than one file — the digest, in path order,
and the duplicate names — is done here afterwards, over all of them, so the
result is the same however many processes did the work.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from erelease.config.diagnostics import ConfigResult, Diagnostic, display_path
from erelease.config.explain import problem_diagnostic, to_diagnostics
from erelease.config.parallel import map_chunks
from erelease.config.settings_file import SETTINGS_FILE, check_settings
from erelease.config.validate import KIND_NAMES, check_connection
from erelease.config.yamlload import MAX_BYTES, parse_yaml
from erelease.gcpause import collector_paused
from erelease.model import Connection, Kind
from erelease.settings import Settings

__all__ = ["CONNECTIONS_DIR", "load_config"]

CONNECTIONS_DIR = "connections.d"
_SUFFIXES = (".yaml", ".yml")
_KIND_LABEL = {kind: label for label, kind in KIND_NAMES.items()}

#: A file to read: (absolute path, path shown to the user, path in the digest).
_File = tuple[str, str, str]
#: One document of a file: its kind and name when well-formed, its index in
#: the file, and its connection when it has no error.
_Entry = tuple[Kind | None, str | None, int, Connection | None]
#: One file validated: the bytes read (or why they could not be), its
#: diagnostics and its documents. Small to pickle: a worker sends a list back.
_Checked = tuple[bytes | str, list[Diagnostic], list[_Entry]]


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
        """Every ``*.yaml``/``*.yml`` below ``root``, skipping hidden files and directories.

        A symbolic link to a directory is followed like a file link is (a
        directory that silently vanished from the config would show up as
        deletes in a plan); a directory already walked — a link loop, or the
        same directory linked twice — is walked only once, in sorted order.
        """

        def failed(exc: OSError) -> None:
            where = display_path(exc.filename or root)
            self.diagnostics.append(
                Diagnostic(where, 1, 1, "error", "", f"cannot be read: {exc.strerror}")
            )

        prefix = "" if shown_root == "." else shown_root.rstrip("/") + "/"
        digest_root = self._digest_name(root, shown_root)
        digest_prefix = "" if root == self.config_dir else digest_root.rstrip("/") + "/"
        walked = {os.path.realpath(root)}
        for dirpath, dirnames, filenames in os.walk(root, onerror=failed, followlinks=True):
            kept = []
            for name in sorted(d for d in dirnames if not d.startswith(".")):
                real = os.path.realpath(os.path.join(dirpath, name))
                if real not in walked:
                    walked.add(real)
                    kept.append(name)
            dirnames[:] = kept
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

    def ordered(self) -> list[_File]:
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
    with collector_paused():  # forked workers inherit the pause
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
    ordered = files.ordered()
    work = partial(_check_files, default_app_name=default_app_name)
    checked = (one for chunk in map_chunks(work, ordered) for one in chunk)
    connections_found = _merge(ordered, checked, digest.update, diagnostics)
    return ConfigResult(
        connections=sorted(connections_found, key=lambda c: (c.kind, c.name)),
        diagnostics=sorted(set(diagnostics), key=Diagnostic.sort_key),
        files=[Path(absolute) for absolute, _, _ in ordered],
        digest=digest.hexdigest(),
    )


def _check_files(files: Sequence[_File], default_app_name: str | None) -> list[_Checked]:
    """Read and validate ``files``, each on its own (one block, in whichever process)."""
    return [_check_file(absolute, shown, default_app_name) for absolute, shown, _ in files]


def _check_file(absolute: str, shown: str, default_app_name: str | None) -> _Checked:
    raw = _read(absolute)
    if isinstance(raw, str):
        return raw, [Diagnostic(shown, 1, 1, "error", "", raw)], []
    documents, problems = parse_yaml(raw)
    diagnostics = [problem_diagnostic(problem, shown) for problem in problems]
    entries: list[_Entry] = []
    for document in documents:
        checked = check_connection(document, file=shown, default_app_name=default_app_name)
        if checked.findings:
            diagnostics += to_diagnostics(checked.findings, document, shown)
        entries.append((checked.kind, checked.name, document.index, checked.connection))
    return raw, diagnostics, entries


def _merge(
    files: Sequence[_File],
    checked: Iterable[_Checked],
    digest: Callable[[bytes], object],
    diagnostics: list[Diagnostic],
) -> list[Connection]:
    """Fold the validated files, in path order, into the digest, diagnostics and connections.

    A name already defined (per kind, in any earlier file or document) is
    reported where it is defined again, and that connection is left out.
    """
    connections: list[Connection] = []
    # (kind, name) -> where it was first defined: (number of the file, document index)
    first_seen: dict[tuple[str, str], tuple[int, int]] = {}
    positions = _NamePositions(files)
    for number, (file, (raw, found, entries)) in enumerate(zip(files, checked, strict=True)):
        diagnostics += found
        if isinstance(raw, str):
            continue
        digest(_digest_entry(file[2], raw))
        positions.raw[number] = raw
        for kind, name, index, connection in entries:
            if kind is not None and name is not None:
                first = first_seen.setdefault((kind, name), (number, index))
                if first != (number, index):
                    diagnostics.append(_duplicate(kind, name, (number, index), first, positions))
                    continue
            if connection is not None:
                connections.append(connection)
    return connections


class _NamePositions:
    """Where ``metadata.name`` is in a document, found again only for a duplicate name.

    Only the bytes of each file are kept; a file is parsed again the first time
    one of its names is needed, which for a valid config is never.
    """

    def __init__(self, files: Sequence[_File]) -> None:
        self.files = files
        self.raw: dict[int, bytes] = {}
        self._parsed: dict[int, dict[int, tuple[int, int]]] = {}

    def shown(self, number: int) -> str:
        return self.files[number][1]

    def find(self, number: int, index: int) -> tuple[int, int] | None:
        found = self._parsed.get(number)
        if found is None:
            documents = parse_yaml(self.raw[number])[0]
            found = {d.index: d.where(("metadata", "name")) for d in documents}
            self._parsed[number] = found
        return found.get(index)


def _duplicate(
    kind: Kind,
    name: str,
    at: tuple[int, int],
    first: tuple[int, int],
    positions: _NamePositions,
) -> Diagnostic:
    """The second definition of a name, pointing at the first."""
    where = positions.shown(first[0])
    first_position = positions.find(*first)
    if first_position is not None:
        where = f"{where}:{first_position[0]}:{first_position[1]}"
    line, col = positions.find(*at) or (1, 1)
    message = f'duplicate {_KIND_LABEL[kind]} name "{name}"; first defined at {where}'
    return Diagnostic(positions.shown(at[0]), line, col, "error", "metadata.name", message)


def _app_name(data: Any) -> str | None:
    incoming = data.get("incoming") if isinstance(data, dict) else None
    name = incoming.get("appName") if isinstance(incoming, dict) else None
    return name if isinstance(name, str) else None
