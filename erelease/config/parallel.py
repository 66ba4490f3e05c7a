"""Spread the validation of a large config over every usable core.

Parsing and validating thousands of connection files is pure Python work, so
one process uses one core however many the machine has; at 10,000 files that
is most of a no-op ``plan``. :func:`map_chunks` cuts the (sorted) file list
into contiguous blocks; this process and one forked child per other core claim
the next block whenever they are free, and the results come back in block
order — so the caller merges them exactly as if one process had done all the
work, and cross-file checks (duplicate names) still see every file. Claiming
rather than halving keeps a child slowed down by other work on a shared
machine from holding everything up: it simply ends up with fewer blocks.

Why ``fork``: the child starts at once with every module imported and every
schema compiled; nothing is pickled on the way in. It is used only on Linux
and only while this process runs a single thread (forking a threaded process
can leave a lock held forever in the child); anywhere else all the work runs
here.

Why at least :data:`MIN_FILES_PER_JOB` files per process: a child costs a
fork, a copy of every memory page it writes to (at 10,000 files some 20,000
pages, a quarter of a second of CPU on a virtual machine), and the pickling
of its results — the bytes read and frozen dataclasses, about 1 MB and 8 ms
per thousand files there, and as long to unpickle here. A few hundred files
pay for that; a few dozen do not. Two cores therefore share the work from
1,000 files up.

Nothing a child does can change the outcome: a child that raises, cannot
pickle its result, dies, or has not answered long after this process ran out
of blocks counts as failed, and the blocks it claimed are worked through
again here, without a traceback. Where a fork, a pipe or the shared block
counter cannot be had, the work runs here too. No child outlives the call:
each is reaped (killed first if need be) before :func:`map_chunks` returns or
raises.

``ERELEASE_JOBS`` sets how many processes may share the work: an integer,
``1`` to keep it all in this process; unset, empty, ``0`` or not a number
means one per usable CPU.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from multiprocessing.connection import Connection
from multiprocessing.context import ForkContext
from typing import Any, Generic, TypeVar

__all__ = ["ENV_VAR", "MIN_FILES_PER_JOB", "map_chunks", "processes_for", "requested_jobs"]

T = TypeVar("T")
R = TypeVar("R")

ENV_VAR = "ERELEASE_JOBS"
#: Files per process at the least: n files use at most n // this processes,
#: so below twice this everything runs here.
MIN_FILES_PER_JOB = 500
#: How long a child may keep us waiting once no block is left to claim: this
#: many times what our own blocks took, and never less than _MIN_WAIT seconds.
_WAIT_FACTOR = 10.0
_MIN_WAIT = 30.0
#: How long claiming a block may wait for another process to let go of the counter.
_LOCK_WAIT = 5.0
#: Blocks per process: the last block claimed is what the others may wait for.
_BLOCKS_PER_PROCESS = 16
#: How long a child that has answered may take to exit before it is killed.
_EXIT_WAIT = 1.0
_OK = "ok"
_FAILED = "failed"


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def requested_jobs(environ: Mapping[str, str] | None = None) -> int:
    """``ERELEASE_JOBS`` if it is a positive integer, else one per usable CPU."""
    text = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    return jobs if jobs >= 1 else usable_cpus()


def _can_fork() -> bool:
    return (
        sys.platform.startswith("linux")
        and "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
    )


def processes_for(count: int) -> int:
    """How many processes :func:`map_chunks` would use for ``count`` items, here and now."""
    processes = min(requested_jobs(), count // MIN_FILES_PER_JOB)
    return processes if processes >= 2 and _can_fork() else 1


class _Blocks:
    """Which block comes next: a counter this process and its children share.

    Every process claims the next block whenever it is free, so a process
    slowed down by other work on the machine simply ends up with fewer.
    """

    def __init__(self, context: ForkContext, count: int) -> None:
        self.count = count
        self._next = context.RawValue("l", 0)
        self._lock = context.Lock()

    def claims(self) -> Iterator[int]:
        """Block numbers claimed for the caller, until none is left."""
        while True:
            # a process that died holding the lock must not hang the others
            if not self._lock.acquire(timeout=_LOCK_WAIT):
                return  # whatever is left unclaimed is worked through by the parent
            try:
                index = int(self._next.value)
                self._next.value = index + 1
            finally:
                self._lock.release()
            if index >= self.count:
                return
            yield index


def _serve(
    work: Callable[[Sequence[T]], R],
    blocks: Sequence[Sequence[T]],
    claimed: _Blocks,
    writer: Connection,
) -> None:
    """What a child runs: the blocks it claimed, sent back — or a failure marker, no traceback."""
    with contextlib.suppress(BaseException):  # the parent then reads end-of-file: failed
        try:
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; it reaps us
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
                done = {index: work(blocks[index]) for index in claimed.claims()}
                message: tuple[str, Any] = (_OK, done)
                writer.send(message)  # pickles the whole message before writing any of it
            except BaseException:
                writer.send((_FAILED, None))
        finally:
            writer.close()


class _Child(Generic[R]):
    """One forked child claiming blocks, and the pipe its results come back on."""

    def __init__(
        self,
        context: ForkContext,
        work: Callable[[Sequence[T]], R],
        blocks: Sequence[Sequence[T]],
        claimed: _Blocks,
    ) -> None:
        self.reader, self._writer = context.Pipe(duplex=False)
        args = (work, blocks, claimed, self._writer)
        self.process = context.Process(target=_serve, args=args, daemon=True)
        self.started = False
        self.answered = False

    def start(self) -> None:
        """Fork the child (if that fails, :meth:`result` says so)."""
        # Ctrl-C stays blocked in the child until it ignores it, so that no child
        # prints a KeyboardInterrupt; here it is only held back for the fork.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.process.start()
            self.started = True
        except Exception:
            self.started = False
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            self._writer.close()  # ours; the child has its own, so its exit means end-of-file

    def result(self, timeout: float) -> dict[int, R]:
        """The blocks the child worked through, by number; none if it failed or kept us waiting."""
        if not self.started:
            return {}
        try:
            if not self.reader.poll(timeout):
                return {}
            self.answered = True  # a result, a failure marker or end-of-file: it is exiting
            status, payload = self.reader.recv()
        except Exception:
            return {}
        return dict(payload) if status == _OK else {}

    def stop(self) -> None:
        """Reap the child: wait for it to exit if it has answered, else kill it first."""
        self.reader.close()
        self._writer.close()
        if self.process.pid is None:  # never forked
            return
        if not self.answered:
            self.process.kill()
        self.process.join(timeout=_EXIT_WAIT)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.process.close()


def _split(items: Sequence[T], parts: int) -> list[Sequence[T]]:
    """``items`` in ``parts`` contiguous blocks whose sizes differ by at most one."""
    bounds = [len(items) * i // parts for i in range(parts + 1)]
    return [items[start:end] for start, end in itertools.pairwise(bounds)]


def map_chunks(work: Callable[[Sequence[T]], R], items: Sequence[T]) -> list[R]:
    """``work`` over contiguous blocks of ``items``, results in block order.

    One block (all of ``items``) unless :func:`processes_for` allows more; then
    this process and its forked children claim blocks as they go, and every
    block no child delivered (a child failed, or took too long) is worked
    through here.
    """
    processes = processes_for(len(items))
    if processes < 2:
        return [work(items)]
    context = multiprocessing.get_context("fork")
    blocks = _split(items, min(len(items), processes * _BLOCKS_PER_PROCESS))
    try:
        claimed = _Blocks(context, len(blocks))
    except Exception:  # no shared memory or semaphores here (no /dev/shm)
        return [work(items)]
    children: list[_Child[R]] = []
    try:
        for _ in range(processes - 1):
            try:
                child: _Child[R] = _Child(context, work, blocks, claimed)
            except Exception:
                break  # no pipe to spare: fewer processes claim the blocks
            children.append(child)  # before it forks, so that it is always reaped
            child.start()
        start = time.monotonic()
        done = {index: work(blocks[index]) for index in claimed.claims()}
        wait = max(_MIN_WAIT, _WAIT_FACTOR * (time.monotonic() - start))
        deadline = time.monotonic() + wait
        for child in children:
            done.update(child.result(max(0.0, deadline - time.monotonic())))
        return [done[i] if i in done else work(block) for i, block in enumerate(blocks)]
    finally:
        for child in children:
            child.stop()
