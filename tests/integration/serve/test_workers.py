"""``run_server(workers=2)``: both processes answer, revocation is immediate in each, clean exits.

Which worker answered a request is read from the access log (``pid``), matched
by a User-Agent unique to each request; every request goes over a fresh
connection so that the kernel hands it to whichever worker accepts first.
"""

from __future__ import annotations

import base64
import functools
import http.client
import itertools
import json
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.serve.conftest import STACK, Client, Registry
from tests.integration.serve.replica import Replica

_TRIES = 200
_agents = itertools.count()


@pytest.fixture
def replica(registry: Registry, workdir: Path) -> Replica:
    return Replica(state=registry.url, workdir=workdir, stack=STACK, name="workers", workers=2)


def worker_pids(replica: Replica) -> list[int]:
    found = re.search(r"started 2 worker\(s\): pids \[(\d+), (\d+)\]", replica.log())
    assert found, replica.log()
    return [int(found.group(1)), int(found.group(2))]


def answered_by(replica: Replica) -> dict[str, tuple[int, int]]:
    """User-Agent -> (pid, status) of every access line so far."""
    lines = (json.loads(line) for line in replica.log().splitlines() if line.startswith("{"))
    return {
        line["user_agent"]: (line["pid"], line["status"])
        for line in lines
        if line.get("event") == "access" and "user_agent" in line
    }


def fresh(
    url: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: str = ""
) -> tuple[str, int, bytes]:
    """One request on a new connection; (its User-Agent, status, body)."""
    agent = f"probe-{next(_agents)}"
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(
            method, path, body=body, headers={"User-Agent": agent, **(headers or {})}
        )
        response = connection.getresponse()
        return agent, response.status, response.read()
    finally:
        connection.close()


def until_both(
    replica: Replica, request: Callable[[], tuple[str, int, bytes]]
) -> dict[int, list[tuple[int, bytes]]]:
    """Repeat ``request`` until each worker has answered it; pid -> [(status, body)]."""
    pids = worker_pids(replica)
    sent: dict[str, tuple[int, bytes]] = {}
    for _ in range(_TRIES):
        agent, status, body = request()
        sent[agent] = (status, body)
        seen = answered_by(replica)
        by_pid: dict[int, list[tuple[int, bytes]]] = {}
        for each, answer in sent.items():
            if each in seen:
                by_pid.setdefault(seen[each][0], []).append(answer)
        if set(by_pid) == set(pids):
            return by_pid
    raise AssertionError(f"only workers {sorted(by_pid)} of {pids} answered {_TRIES} requests")


def token_request(replica: Replica, client: Client) -> tuple[str, int, bytes]:
    basic = base64.b64encode(f"{client.client_id}:{client.secret}".encode()).decode()
    return fresh(
        f"{replica.token_url}?appName={client.app_name}",
        method="POST",
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        body="grant_type=client_credentials",
    )


def pull_request(replica: Replica, bearer: str) -> tuple[str, int, bytes]:
    return fresh(replica.transcripts_url, headers={"Authorization": f"Bearer {bearer}"})


def test_two_workers_answer_and_stop_cleanly(replica: Replica) -> None:
    with replica:
        pids = worker_pids(replica)
        by_pid = until_both(replica, lambda: fresh(f"{replica.origin}/healthz"))
        assert all(status == 200 for answers in by_pid.values() for status, _ in answers)
    assert replica.returncode == 0
    log = replica.log()
    for number, pid in enumerate(pids, start=1):
        assert f"Finished server process [{pid}]" in log
        assert f"worker {number} (pid {pid}) stopped" in log
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped by the parent, not left behind


def test_revocation_is_immediate_in_every_worker(replica: Replica, registry: Registry) -> None:
    rotated, kept = registry.add("wk-rot"), registry.add("wk-keep")
    with replica:
        issued = until_both(replica, lambda: token_request(replica, rotated))
        old_tokens = [
            json.loads(body)["access_token"] for answers in issued.values() for _, body in answers
        ]
        keep_token = json.loads(token_request(replica, kept)[2])["access_token"]
        assert {pull_request(replica, bearer)[1] for bearer in old_tokens} == {200}

        new = registry.rotate(rotated)  # an apply: the old secret and its tokens are void

        for bearer in old_tokens:  # tokens issued by either worker, refused by either
            refused = until_both(replica, functools.partial(pull_request, replica, bearer))
            assert {s for answers in refused.values() for s, _ in answers} == {401}
        old_secret = until_both(replica, lambda: token_request(replica, rotated))
        assert {s for answers in old_secret.values() for s, _ in answers} == {401}
        new_secret = until_both(replica, lambda: token_request(replica, new))
        assert {s for answers in new_secret.values() for s, _ in answers} == {200}
        kept_pulls = until_both(replica, lambda: pull_request(replica, keep_token))
        assert {s for answers in kept_pulls.values() for s, _ in answers} == {200}
    assert replica.returncode == 0


def test_sigint_drains_every_worker_and_exits_130(replica: Replica) -> None:
    replica.start()
    try:
        pids = worker_pids(replica)
        assert fresh(f"{replica.origin}/healthz")[1] == 200
    finally:
        code = replica.stop(signal.SIGINT)
    assert code == 130
    log = replica.log()
    assert all(f"Finished server process [{pid}]" in log for pid in pids)


def test_a_worker_that_dies_is_reported_and_the_server_stops(replica: Replica) -> None:
    replica.start()
    try:
        victim, other = worker_pids(replica)
        os.kill(victim, signal.SIGKILL)
        assert replica.process is not None
        deadline = time.monotonic() + 20
        while replica.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        code = replica.stop()
    assert code == 1
    log = replica.log()
    assert f"worker 1 (pid {victim}) was killed by SIGKILL while serving" in log
    assert f"Finished server process [{other}]" in log  # the survivor drained and stopped


def _gone(pid: int) -> bool:
    """Exited (a zombie waiting for whoever adopted it counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def test_workers_stop_when_their_parent_is_killed(replica: Replica) -> None:
    replica.start()
    try:
        pids = worker_pids(replica)
        assert replica.process is not None
        replica.process.kill()  # no chance to stop them: they must notice by themselves
        replica.process.wait()
        deadline = time.monotonic() + 20
        while not all(_gone(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(_gone(pid) for pid in pids)
    finally:
        replica.stop()
    log = replica.log()
    assert all(f"worker {pid} lost its parent process; stopping" in log for pid in pids)
    assert all(f"Finished server process [{pid}]" in log for pid in pids)
