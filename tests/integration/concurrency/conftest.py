"""Config directories of one or more stacks, and real erelease processes racing on them.

A :class:`Site` is one config directory (``erelease.yaml`` naming the stack and the
shared state URL, ``connections.d/``) wired to the session's OpenBao dev server.
Checks of the outcome run in-process through click's runner (fast); everything that
races or crashes runs as a real subprocess started by :class:`Procs`, which kills
whatever is still running when the test ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

import erelease
from erelease.cli import cli
from erelease.model import ConnectionRecord
from erelease.state import open_store
from tests.fixtures.openbao import OpenBaoEnv, OpenBaoServer

BACKENDS = ["sqlite", "postgres"]
DRIVER = Path(__file__).with_name("driver.py")
REPO = Path(erelease.__file__).resolve().parent.parent
EXIT_LOCKED = 4

#: ``LockInfo.describe()`` as it appears in an exit-4 message
LOCKED_BY = (
    r"locked by (?P<user>\S+)@(?P<host>\S+) \(pid (?P<pid>\d+)\) running (?P<operation>.+?) "
    r"since (?P<since>\S+), lock ID (?P<lock_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-"
    r"[0-9a-f]{4}-[0-9a-f]{12})"
)
#: the PostgreSQL fallbacks when the session holding the advisory lock has no lock row
#: (yet): it is described from ``pg_stat_activity``, or as "another session"
LOCKED_BY_SESSION = r"locked by .+ \(pid \d+\) running .+ since .+, lock ID \(none recorded\)"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def state_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """One empty registry that every site of the test shares (absolute SQLite path)."""
    if backend == "sqlite":
        shared = tmp_path / "shared"
        shared.mkdir()
        return f"sqlite:///{shared / 'state.db'}"
    return str(request.getfixturevalue("pg_db_url"))


def sqlite_path(url: str) -> Path | None:
    return Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None


def registry_blobs(url: str) -> list[bytes]:
    """Everything the registry holds, as raw bytes: the SQLite file and its WAL/SHM
    sidecars, or every row of every erelease table in PostgreSQL as text."""
    path = sqlite_path(url)
    if path is not None:
        return [p.read_bytes() for p in sorted(path.parent.glob(path.name + "*"))]
    blobs: list[bytes] = []
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'erelease'"
        ).fetchall()
        for (table,) in tables:
            rows = conn.execute(f'SELECT t::text FROM erelease."{table}" t').fetchall()
            blobs.append("\n".join(r[0] for r in rows).encode())
    return blobs


@dataclass
class Site:
    """One config directory of ``stack`` whose registry is ``state_url``."""

    path: Path
    stack: str
    state_url: str
    mount: str
    bao: OpenBaoServer
    runner: CliRunner = field(default_factory=CliRunner)
    #: stdout and stderr of every in-process run, for the canary scan
    outputs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        (self.path / "connections.d").mkdir(parents=True, exist_ok=True)
        (self.path / "erelease.yaml").write_text(
            textwrap.dedent(
                f"""\
                stack: {self.stack}
                state: "{self.state_url}"
                incoming:
                  baseUrl: http://127.0.0.1:9/campus
                tests:
                  timeout: 1s
                  retries: 0
                """
            ),
            encoding="utf-8",
        )

    def write(self, name: str, text: str) -> None:
        (self.path / "connections.d" / f"{name}.yaml").write_text(text, encoding="utf-8")

    def put_vendor_secret(self, name: str, *, password: str = "pw-1") -> None:
        self.bao.kv_put(
            self.mount, f"erelease/{name}", {"password": password, "consumer_secret": "cs-1"}
        )

    def vault_data(self, path: str) -> dict[str, str] | None:
        try:
            got = self.bao.client().secrets.kv.v2.read_secret_version(
                path, mount_point=self.mount, raise_on_deleted_version=True
            )
        except Exception:
            return None
        return dict(got["data"]["data"])

    def run(self, *args: str) -> Result:
        """``erelease -C <site> ARGS`` in this process."""
        result = self.runner.invoke(cli, ["-C", str(self.path), *args])
        self.outputs += [result.stdout, result.stderr]
        return result

    def ok(self, *args: str, codes: Sequence[int] = (0,)) -> Result:
        result = self.run(*args)
        assert result.exit_code in codes, (args, result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return result

    def apply(self, *extra: str) -> Result:
        return self.ok("apply", "--auto-approve", "--no-test", *extra)

    def plan_code(self) -> int:
        return self.ok("plan", "--detailed-exitcode", codes=(0, 2)).exit_code

    def state_list(self, *, at: str | None = None) -> dict[str, Any]:
        """``state list --format json`` of this site's registry (or of the one ``at``)."""
        args = ("--state", at) if at else ()
        return dict(json.loads(self.ok(*args, "state", "list", "--format", "json").stdout))

    def history(self, *, at: str | None = None) -> list[dict[str, Any]]:
        args = ("--state", at) if at else ()
        return list(json.loads(self.ok(*args, "state", "history", "--format", "json").stdout))

    def record(self, kind: str, name: str, *, at: str | None = None) -> ConnectionRecord | None:
        """The registry row itself (``state list`` leaves out the secret's digest)."""
        with open_store(at or self.state_url) as store:
            return store.get_connection(stack=self.stack, kind=kind, name=name)


@pytest.fixture
def make_site(
    tmp_path: Path, openbao_env: OpenBaoEnv, openbao: OpenBaoServer, openbao_kv: str
) -> Callable[..., Site]:
    """``make_site(name, stack=..., state_url=...)``: a new config directory."""

    def _make(name: str, *, stack: str, state_url: str) -> Site:
        return Site(
            path=tmp_path / name, stack=stack, state_url=state_url, mount=openbao_kv, bao=openbao
        )

    return _make


@dataclass
class Proc:
    """A running erelease process; its output goes to files (no pipe can fill up)."""

    popen: subprocess.Popen[bytes]
    out: Path
    err: Path
    marker: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def finish(self, timeout: float = 60.0) -> tuple[int, str, str]:
        """Wait for it to exit: (exit code, stdout, stderr)."""
        code = self.popen.wait(timeout)
        return code, self.stdout, self.stderr

    @property
    def stdout(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def wait_marker(self, timeout: float = 30.0) -> None:
        """Until the driver reached its seam (and wrote MARKER); fails if it exited."""
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            if self.popen.poll() is not None:
                pytest.fail(
                    f"the driver exited {self.popen.returncode} before its seam:\n"
                    f"{self.stdout}\n{self.stderr}"
                )
            assert time.monotonic() < deadline, "the driver never reached its seam"
            time.sleep(0.01)
        assert int(self.marker.read_text()) == self.pid

    def kill9(self) -> int:
        os.kill(self.pid, signal.SIGKILL)
        return self.popen.wait(30)


class Procs:
    """Starts ``erelease`` subprocesses (plain or through ``driver.py``); kills leftovers."""

    def __init__(self, root: Path, environ: dict[str, str]) -> None:
        self.root = root
        self.environ = environ
        self.started: list[Proc] = []

    def start(self, site: Site, *args: str, driver: Sequence[str] = ()) -> Proc:
        n = len(self.started)
        out, err = self.root / f"proc-{n}.out", self.root / f"proc-{n}.err"
        marker = self.root / f"proc-{n}.marker"
        erelease_args = ["-C", str(site.path), *args]
        if driver:
            command = [sys.executable, str(DRIVER), driver[0], str(marker), *driver[1:], "--"]
        else:
            command = [sys.executable, "-m", "erelease"]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            popen = subprocess.Popen(
                [*command, *erelease_args],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=self.environ,
                cwd=self.root,
            )
        proc = Proc(popen, out, err, marker)
        self.started.append(proc)
        return proc

    def outputs(self) -> list[str]:
        return [text for p in self.started for text in (p.stdout, p.stderr)]

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.popen.poll() is None:
                proc.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(30)


@pytest.fixture(scope="session")
def pycache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bytecode for the subprocesses, compiled once per session outside the tree: each
    of them imports all of erelease, and compiling it every time would dominate."""
    prefix = tmp_path_factory.mktemp("pycache")
    warm = (
        "import compileall, sys; "
        "import erelease.cli, erelease.engine.apply, erelease.state.postgres, "
        "erelease.state.sqlite, erelease.secrets.vault; "
        f"compileall.compile_dir({str(REPO / 'erelease')!r}, quiet=1)"
    )
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environ["PYTHONPYCACHEPREFIX"] = str(prefix)
    subprocess.run([sys.executable, "-c", warm], env=environ, check=True, timeout=120)
    return prefix


@pytest.fixture
def procs(tmp_path: Path, openbao_env: OpenBaoEnv, pycache: Path) -> Iterator[Procs]:
    root = tmp_path / "procs"
    root.mkdir()
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VAULT_", "BAO_", "ERELEASE_", "PYTHONDONTWRITEBYTECODE"))
    }
    environ.update(
        PYTHONPYCACHEPREFIX=str(pycache),
        BAO_ADDR=openbao_env.addr,
        BAO_TOKEN=openbao_env.token,
        NO_COLOR="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), environ.get("PYTHONPATH")) if p),
    )
    running = Procs(root, environ)
    try:
        yield running
    finally:
        running.kill_all()
