"""Several serving processes on one listening socket (``run_server(workers=N)``).

A replica answers every request on one event loop (registry calls are short
and synchronous, see ``_app``), so one process uses one core. To use more,
the parent binds the listening socket and forks ``N`` children that each run
uvicorn on the inherited socket: the kernel hands every new connection to
whichever child accepts it first, and no request passes through the parent.

* Each child serves the application built before the fork. The registry
  store it inherits opens connections of its own on first use in the child
  (an SQLite or PostgreSQL connection must not cross a fork, and both stores
  notice one), so every child reads the live registry: a delete or rotation
  is seen by the next request whichever child answers it.
* SIGTERM or SIGINT to the parent is passed on to every child as SIGTERM:
  each stops accepting, lets in-flight requests finish (up to the graceful
  timeout) and exits; the parent returns once all have, or raises
  ``KeyboardInterrupt`` after a SIGINT, as a single process would.
* A child that exits on its own is reported (which worker, which pid, how it
  ended); the others are then stopped the same graceful way and
  :func:`run_workers` raises, so a service manager sees a failed server and
  restarts it whole instead of it serving on, unnoticed, with fewer cores.
* A parent that is killed outright takes its workers with it: each notices
  within :data:`ORPHAN_CHECK` seconds and stops as on SIGTERM, rather than
  holding the port against the server that replaces it.

Throttling state is per process: with ``N`` workers a caller can fail up to
``N`` times the per-worker limit before every worker refuses it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from types import FrameType

import uvicorn

from erelease.errors import ErelaseError

__all__ = ["KILL_GRACE", "ORPHAN_CHECK", "run_workers"]

#: Seconds past the graceful timeout after which a child still running is killed.
KILL_GRACE = 5.0
#: How often a worker checks that the process that forked it is still there.
ORPHAN_CHECK = 0.5
_POLL = 0.05
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

log = logging.getLogger("erelease.serve")


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(ORPHAN_CHECK)
        if os.getppid() != parent:
            log.error("worker %d lost its parent process; stopping", os.getpid())
            os.kill(os.getpid(), signal.SIGTERM)
            return


def _child(config: uvicorn.Config, sock: socket.socket, parent: int) -> None:
    """Serve on the inherited socket until told to stop; never returns."""
    code = 1
    try:
        server = uvicorn.Server(config)

        def stop(_signum: int, _frame: FrameType | None) -> None:
            # before uvicorn installs its handlers, and after it restores ours
            server.should_exit = True

        for sig in _STOP_SIGNALS:
            signal.signal(sig, stop)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
        server.run(sockets=[sock])
        code = 0
    except SystemExit as exc:  # uvicorn's startup failure (lifespan error, ...)
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("worker %d failed", os.getpid())
    finally:
        logging.shutdown()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


class _Supervisor:
    """The parent's side: fork, forward stop signals, reap, report."""

    def __init__(self, config: uvicorn.Config, workers: int) -> None:
        self.config = config
        self.workers = workers
        self.children: dict[int, int] = {}  # pid -> worker number
        self.signals: list[int] = []
        self.failures: list[str] = []
        self.stop_deadline: float | None = None

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signum)
        self.stop("a stop signal")

    def stop(self, why: str) -> None:
        """Ask every child to drain and exit (again, on a repeated signal)."""
        if self.stop_deadline is None:
            log.info("stopping %d worker(s) after %s", len(self.children), why)
            timeout = self.config.timeout_graceful_shutdown or 0
            self.stop_deadline = time.monotonic() + timeout + KILL_GRACE
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def spawn(self, sock: socket.socket) -> None:
        # Stop signals stay blocked across fork() until the child has its own
        # handlers: the parent's would have it signal its siblings.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        parent = os.getpid()
        try:
            for number in range(1, self.workers + 1):
                pid = os.fork()
                if pid == 0:
                    _child(self.config, sock, parent)
                self.children[pid] = number
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

    def reap(self) -> None:
        """Wait until every child has exited, killing stragglers past the deadline."""
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                break
            if pid == 0:
                if self.stop_deadline is not None and time.monotonic() > self.stop_deadline:
                    for straggler in list(self.children):
                        log.error("worker pid %d did not stop in time; killing it", straggler)
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(straggler, signal.SIGKILL)
                    self.stop_deadline = float("inf")
                time.sleep(_POLL)
                continue
            number = self.children.pop(pid, None)
            if number is None:
                continue
            self._exited(number, pid, status)

    def _exited(self, number: int, pid: int, status: int) -> None:
        how = _describe(status)
        if self.stop_deadline is None:
            message = f"worker {number} (pid {pid}) {how} while serving"
            log.error("%s; stopping the other workers", message)
            self.failures.append(message)
            self.stop(f"worker {number} ended")
        elif os.waitstatus_to_exitcode(status) != 0:
            message = f"worker {number} (pid {pid}) {how} while stopping"
            log.error("%s", message)
            self.failures.append(message)
        else:
            log.info("worker %d (pid %d) stopped", number, pid)


def run_workers(config: uvicorn.Config, workers: int) -> None:
    """Serve with ``workers`` forked processes until SIGTERM/SIGINT (see the module doc)."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    sock = config.bind_socket()
    supervisor = _Supervisor(config, workers)
    previous = {sig: signal.signal(sig, supervisor.on_signal) for sig in _STOP_SIGNALS}
    try:
        supervisor.spawn(sock)
        sock.close()  # the children hold it; the parent accepts nothing
        pids = sorted(supervisor.children, key=supervisor.children.__getitem__)
        log.info("started %d worker(s): pids %s", workers, pids)  # in worker order
        supervisor.reap()
    finally:
        if supervisor.children:  # an exception in the parent: leave no orphan serving
            supervisor.stop("an error in the parent")
            supervisor.reap()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        with contextlib.suppress(OSError):
            sock.close()
    if supervisor.failures:
        raise ErelaseError(
            "erelease serve stopped: " + "; ".join(supervisor.failures),
            hint="the log above says why; a service manager may restart the server",
        )
    if signal.SIGINT in supervisor.signals:
        raise KeyboardInterrupt
