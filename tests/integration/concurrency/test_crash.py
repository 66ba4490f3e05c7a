"""kill -9 of a real ``erelease apply`` at its worst moments, on both registry backends.

The apply is stopped inside the registry commit seam (``driver.py``): the stack lock is
held and every Vault write is done, the registry transaction has not started. Killed
there, it must leave nothing half-written, must not need ``state unlock``, and the next
plain apply must converge — with the registry's digest of each minted client secret
matching the secret in Vault. A canary planted as a vendor password must appear in no
output of any process and nowhere in the registry.
"""

from __future__ import annotations

import hashlib
import re
import signal
import time
from collections.abc import Callable

from tests.fixtures.common import CANARY
from tests.integration.concurrency.conftest import (
    EXIT_LOCKED,
    LOCKED_BY,
    Procs,
    Site,
    registry_blobs,
)
from tests.integration.engine.conftest import incoming_yaml, outgoing_yaml

STACK = "district-42"
APPLY = ("apply", "--auto-approve", "--no-test")
CREDENTIALS = "erelease/incoming/cfnc"


def vendor_site(make_site: Callable[..., Site], state_url: str) -> Site:
    """A district with one vendor connection whose password is the canary."""
    site = make_site("district-42", stack=STACK, state_url=state_url)
    site.put_vendor_secret("parchment", password=CANARY)
    site.write("parchment", outgoing_yaml("parchment", site.mount))
    return site


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def wait_unlocked(site: Site, timeout: float = 15.0) -> None:
    """Until ``state list`` shows no lock (PostgreSQL: the server has ended the dead
    holder's session; SQLite: the holder's pid is gone)."""
    deadline = time.monotonic() + timeout
    while site.state_list()["lock"] is not None:
        assert time.monotonic() < deadline, f"still locked: {site.state_list()['lock']}"
        time.sleep(0.05)


def assert_converged(site: Site, procs: Procs) -> None:
    """The registry's client-secret digest is that of the secret now in Vault, the plan
    is empty, and neither the canary nor the minted secret leaked anywhere."""
    creds = site.vault_data(CREDENTIALS)
    assert creds is not None
    record = site.record("incoming", "cfnc")
    assert record is not None
    assert record.outputs["clientSecretSha256"] == sha256(creds["client_secret"])
    assert record.outputs["clientId"] == creds["client_id"]
    assert site.plan_code() == 0
    assert_no_leak(site, procs, creds["client_secret"])


def assert_no_leak(site: Site, procs: Procs, *secrets: str) -> None:
    texts = [*procs.outputs(), *site.outputs]
    blobs = registry_blobs(site.state_url)
    for secret in (CANARY, *secrets):
        for text in texts:
            assert secret not in text
        for blob in blobs:
            assert secret.encode() not in blob


def test_kill9_of_an_apply_holding_the_lock(
    state_url: str, make_site: Callable[..., Site], procs: Procs
) -> None:
    site = vendor_site(make_site, state_url)
    site.apply()
    before = site.state_list()
    history = site.history()
    site.write("parchment", outgoing_yaml("parchment", site.mount, port=8443))

    holder = procs.start(site, *APPLY, driver=("hang",))
    holder.wait_marker()
    lock = site.state_list()["lock"]
    assert lock is not None and lock["pid"] == holder.pid and lock["operation"] == "apply"
    refused = site.run(*APPLY)
    assert refused.exit_code == EXIT_LOCKED
    named = re.search(LOCKED_BY, refused.stderr)
    assert named is not None and int(named["pid"]) == holder.pid, refused.stderr
    assert named["lock_id"] == lock["lock_id"]

    assert holder.kill9() == -signal.SIGKILL
    # nothing half-written: the registry is exactly as before the killed apply
    after = site.state_list()
    assert after["serial"] == before["serial"] and after["connections"] == before["connections"]
    assert site.history() == history
    wait_unlocked(site)

    # a normal apply proceeds, with no `state unlock` and no --lock-timeout
    site.apply()
    assert site.plan_code() == 0
    assert [h["serial"] for h in site.history()] == [2, 1]
    assert site.state_list()["lock"] is None
    assert_no_leak(site, procs)


def test_kill9_between_the_vault_write_and_the_commit_of_a_create(
    state_url: str, make_site: Callable[..., Site], procs: Procs
) -> None:
    site = vendor_site(make_site, state_url)
    site.apply()
    history = site.history()
    site.write("cfnc", incoming_yaml("cfnc", site.mount))

    crashed = procs.start(site, *APPLY, driver=("die",))
    code, out, err = crashed.finish()
    assert code == -signal.SIGKILL and crashed.marker.exists(), (code, out, err)
    # Vault is ahead of the registry: credentials written, no row, no history
    assert site.vault_data(CREDENTIALS) is not None
    assert site.record("incoming", "cfnc") is None
    assert site.history() == history

    site.apply()
    assert [h["serial"] for h in site.history()] == [2, 1]
    assert_converged(site, procs)


def test_kill9_between_the_vault_write_and_the_commit_of_a_rotate(
    state_url: str, make_site: Callable[..., Site], procs: Procs
) -> None:
    site = vendor_site(make_site, state_url)
    site.write("cfnc", incoming_yaml("cfnc", site.mount))
    site.apply()
    first = site.vault_data(CREDENTIALS)
    assert first is not None
    history = site.history()

    crashed = procs.start(site, *APPLY, "--rotate", "cfnc", driver=("die",))
    code, out, err = crashed.finish()
    assert code == -signal.SIGKILL and crashed.marker.exists(), (code, out, err)
    rotated = site.vault_data(CREDENTIALS)
    assert rotated is not None and rotated["client_secret"] != first["client_secret"]
    record = site.record("incoming", "cfnc")
    assert record is not None
    assert record.outputs["clientSecretSha256"] == sha256(first["client_secret"])
    assert site.history() == history

    # no --rotate this time: the registry must notice Vault moved on and catch up
    site.apply()
    assert [h["serial"] for h in site.history()] == [2, 1]
    assert_converged(site, procs)
    assert_no_leak(site, procs, first["client_secret"], rotated["client_secret"])
