"""A serve replica in its own process, as ``erelease serve`` runs it (``run_server``).

``python -m tests.integration.serve.replica --state URL --dir DIR --port N``
serves DIR/transcripts from the registry at URL until SIGTERM (``--workers``
forked processes, default 1). :class:`Replica` starts one, waits until
``/healthz`` answers, and stops it with SIGTERM. Like ``erelease serve``, it
exits 0 after SIGTERM, 130 after SIGINT and 1 when ``run_server`` fails.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from tests.fixtures.common import free_port

ROOT = Path(__file__).resolve().parents[3]


class Replica:
    """One ``run_server`` process on a loopback port; its stderr goes to a file."""

    def __init__(
        self,
        *,
        state: str,
        workdir: Path,
        stack: str,
        ttl: float = 3600.0,
        name: str = "r",
        workers: int = 1,
    ) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.origin}/campus"
        self.token_url = f"{self.base_url}/oauth2/token"
        self.transcripts_url = f"{self.base_url}/api/campus/transcript/eTranscripts"
        self.log_path = workdir / f"replica-{name}-{self.port}.log"
        self._args = [
            sys.executable,
            "-m",
            "tests.integration.serve.replica",
            f"--state={state}",
            f"--dir={workdir}",
            f"--stack={stack}",
            f"--port={self.port}",
            f"--ttl={ttl}",
            f"--workers={workers}",
        ]
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    def start(self) -> Replica:
        self._log = self.log_path.open("wb")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            self._args, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"replica exited early:\n{self.log()}")
            if self._healthy():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"replica did not become healthy:\n{self.log()}")

    def _healthy(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """``sig`` (SIGTERM), then wait for the graceful shutdown; the exit code."""
        code = 0
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(sig)
            try:
                code = self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
            self.process = None
            self.returncode = code
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def __enter__(self) -> Replica:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main() -> None:
    from erelease.errors import ErelaseError
    from erelease.serve import run_server
    from erelease.settings import ServeSettings, Settings
    from erelease.state import open_store

    parser = argparse.ArgumentParser()
    parser.add_argument("--state", required=True)
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--ttl", type=float, default=3600.0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    settings = Settings(
        config_dir=args.dir,
        stack=args.stack,
        state=args.state,
        base_url=f"http://127.0.0.1:{args.port}/campus",
        serve=ServeSettings(transcripts=args.dir / "transcripts", token_ttl=args.ttl),
    )
    try:
        with open_store(args.state) as store:
            run_server(
                settings=settings,
                store=store,
                host="127.0.0.1",
                port=args.port,
                workers=args.workers,
            )
    except KeyboardInterrupt:
        sys.exit(130)
    except ErelaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
