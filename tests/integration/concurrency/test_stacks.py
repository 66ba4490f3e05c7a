"""Two stacks in one PostgreSQL database neither block nor see each other."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable

from tests.integration.concurrency.conftest import EXIT_LOCKED, LOCKED_BY, Procs, Site
from tests.integration.engine.conftest import outgoing_yaml

APPLY = ("apply", "--auto-approve", "--no-test")


def test_two_stacks_in_one_postgres_database(
    pg_db_url: str, make_site: Callable[..., Site], procs: Procs
) -> None:
    a = make_site("district-a", stack="district-a", state_url=pg_db_url)
    b = make_site("district-b", stack="district-b", state_url=pg_db_url)
    # one connection name in both stacks (their rows must not collide), one of each's own
    for site, own in ((a, "only-a"), (b, "only-b")):
        for name in ("parchment", own):
            site.put_vendor_secret(name)
            site.write(name, outgoing_yaml(name, site.mount, port=443 if site is a else 8443))
    a.apply()
    a_before = a.state_list()
    a.write("parchment", outgoing_yaml("parchment", a.mount, port=444))

    holder = procs.start(a, *APPLY, driver=("hang",))
    try:
        holder.wait_marker()
        lock = a.state_list()["lock"]
        assert lock is not None and lock["pid"] == holder.pid
        refused = a.run(*APPLY)
        assert refused.exit_code == EXIT_LOCKED
        named = re.search(LOCKED_BY, refused.stderr)
        assert named is not None and int(named["pid"]) == holder.pid

        # stack B applies while A is locked, without waiting (--lock-timeout 0s)
        code, out, err = procs.start(b, *APPLY, "--lock-timeout", "0s").finish()
        assert code == 0, (out, err)
        b_list = b.state_list()
        assert b_list["lock"] is None
        assert b_list["serial"] == 1
        assert b_list["lineage"] != a_before["lineage"]
        assert {c["name"]: c["spec"]["uploadPort"] for c in b_list["connections"]} == {
            "parchment": 8443,
            "only-b": 8443,
        }
        assert [h["serial"] for h in b.history()] == [1]
        assert b.plan_code() == 0
        assert b.run("show", "only-a").exit_code != 0

        # and A is untouched by B, still locked by its own holder
        a_now = a.state_list()
        assert a_now["lock"] == lock
        assert a_now["connections"] == a_before["connections"]
        assert [h["serial"] for h in a.history()] == [1]
    finally:
        killed = holder.kill9()
    assert killed == -signal.SIGKILL
    a.apply("--lock-timeout", "10s")
    assert a.plan_code() == 0 and b.plan_code() == 0
    assert {c["name"] for c in a.state_list()["connections"]} == {"parchment", "only-a"}
    assert {c["name"] for c in b.state_list()["connections"]} == {"parchment", "only-b"}
