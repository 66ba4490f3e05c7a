"""Six CI runners apply six different configs of one stack at the same moment.

Each runner is a real ``erelease apply`` process with a config directory of its own;
all name the same stack and the same registry (one SQLite file, or one PostgreSQL
database). They run through ``driver.py slow``: every process imports erelease, waits
at a common gate, and then runs the unmodified CLI, only holding the lock a little
longer inside the commit so that the six really meet.

The stack lock must serialise them: a runner either applies its whole config, or
(without ``--lock-timeout``) gives up with exit 4 naming who holds the lock. Nothing
may be lost or applied twice: the history has one row per runner that applied, with
serials 1..n, and the registry ends up equal to exactly one config — the last
applier's.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.integration.concurrency.conftest import (
    EXIT_LOCKED,
    LOCKED_BY,
    LOCKED_BY_SESSION,
    Procs,
    Site,
)
from tests.integration.engine.conftest import outgoing_yaml

STACK = "district-race"
RUNNERS = 6


def config_of(runner: int) -> dict[str, int]:
    """Outgoing connection name -> uploadPort: a shared one whose port differs per
    runner, and one of the runner's own (so configs differ in their set of names too)."""
    return {"shared": 8000 + runner, f"own-{runner}": 443}


@pytest.mark.parametrize("lock_timeout", ["0s", "60s"])
def test_six_simultaneous_applies_of_one_stack(
    backend: str,
    state_url: str,
    lock_timeout: str,
    make_site: Callable[..., Site],
    procs: Procs,
    tmp_path: Path,
) -> None:
    sites: list[Site] = []
    for runner in range(RUNNERS):
        site = make_site(f"runner-{runner}", stack=STACK, state_url=state_url)
        for name, port in config_of(runner).items():
            site.write(name, outgoing_yaml(name, site.mount, port=port))
        sites.append(site)
    for name in {n for r in range(RUNNERS) for n in config_of(r)}:
        sites[0].put_vendor_secret(name)

    go = tmp_path / "go"
    runs = [
        procs.start(
            site,
            *("apply", "--auto-approve", "--no-test", "--allow-delete"),
            *("--lock-timeout", lock_timeout, "--format", "json"),
            driver=("slow", str(go)),
        )
        for site in sites
    ]
    for run in runs:
        run.wait_marker()  # every runner has imported erelease and waits at the gate
    go.touch()
    finished = [run.finish() for run in runs]

    pids = {run.pid for run in runs}
    serial_of: dict[int, int] = {}  # serial -> the runner that committed it
    for runner, (code, out, err) in enumerate(finished):
        assert code in (0, EXIT_LOCKED), (runner, code, out, err)
        assert "Traceback" not in err and "internal error" not in err
        if code == EXIT_LOCKED:
            holder = re.search(LOCKED_BY, err)
            if holder is None and backend == "postgres":
                # a known gap, pinned down by the test below: the holder's session has
                # the advisory lock but has not written the row naming it yet
                assert re.search(LOCKED_BY_SESSION, err), err
                continue
            assert holder is not None, f"exit 4 does not name the holder: {err!r}"
            assert int(holder["pid"]) in pids - {runs[runner].pid}, err
            assert holder["host"] == socket.gethostname()
            assert holder["operation"] == "apply"
            assert holder["since"] != ""
            continue
        result = json.loads(out)
        assert result["applied"] is True, (runner, out)
        assert result["serial"] not in serial_of, f"serial {result['serial']} committed twice"
        serial_of[result["serial"]] = runner
    codes = [code for code, _, _ in finished]
    if lock_timeout == "0s":
        # all six were released at one gate and each holds the lock for a while
        assert EXIT_LOCKED in codes, codes
    else:
        assert codes == [0] * RUNNERS, [(c, e) for c, _, e in finished]
    assert sorted(serial_of) == list(range(1, len(serial_of) + 1))

    # one history row per runner that applied, carrying that runner's own changes
    history = sites[0].history()
    assert sorted(h["serial"] for h in history) == sorted(serial_of)
    for entry in history:
        runner = serial_of[entry["serial"]]
        changes = {(c["address"], c["action"]) for c in entry["changes"]}
        assert (f"outgoing/own-{runner}", "create") in changes, (runner, entry)

    # the registry equals exactly one config: the last applier's
    last = serial_of[max(serial_of)]
    matching = [runner for runner, site in enumerate(sites) if site.plan_code() == 0]
    assert matching == [last]
    listed = sites[last].state_list()
    assert listed["lock"] is None
    assert listed["serial"] == len(serial_of)
    ports = {c["name"]: c["spec"]["uploadPort"] for c in listed["connections"]}
    assert ports == config_of(last)


def test_a_contender_names_a_postgres_holder_that_has_not_written_its_lock_row_yet(
    pg_db_url: str, make_site: Callable[..., Site], procs: Procs
) -> None:
    """Taking the PostgreSQL lock is two steps: the advisory lock, then the row naming
    the holder. A contender arriving between them must still name the erelease process
    that holds the lock (user@host, pid, operation, since, lock ID — SPEC §3.1 exit 4),
    not just "a session" with no lock ID to pass to ``state unlock``. Real CI runners
    hit this window: the six-runner race above meets it now and then. Here the holder
    lingers in it for a second and a half (``driver.py gap``)."""
    site = make_site("runner", stack=STACK, state_url=pg_db_url)
    site.put_vendor_secret("shared")
    site.write("shared", outgoing_yaml("shared", site.mount))
    holder = procs.start(site, "apply", "--auto-approve", "--no-test", driver=("gap", "1.5"))
    holder.wait_marker()
    with psycopg.connect(pg_db_url, autocommit=True) as conn:
        rows = conn.execute("SELECT count(*) FROM erelease.locks WHERE stack = %s", (STACK,))
        assert rows.fetchone() == (0,), "the holder wrote its lock row before the pause"

    contender = site.run("apply", "--auto-approve", "--no-test")  # --lock-timeout 0s

    assert contender.exit_code == EXIT_LOCKED, (contender.stdout, contender.stderr)
    named = re.search(LOCKED_BY, contender.stderr)
    assert named is not None, f"exit 4 does not name the holder: {contender.stderr!r}"
    assert int(named["pid"]) == holder.pid
    assert named["operation"] == "apply"
    code, out, err = holder.finish()
    assert code == 0, (out, err)
