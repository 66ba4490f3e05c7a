"""``erelease state migrate --to postgresql://…`` moves a SQLite stack up, whole."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.integration.concurrency.conftest import Site
from tests.integration.engine.conftest import incoming_yaml, outgoing_yaml


def test_migrate_a_sqlite_stack_to_postgres(
    tmp_path: Path, pg_db_url: str, make_site: Callable[..., Site]
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'registry.db'}"
    site = make_site("district-42", stack="district-42", state_url=sqlite_url)
    site.put_vendor_secret("parchment")
    site.write("parchment", outgoing_yaml("parchment", site.mount))
    site.write("cfnc", incoming_yaml("cfnc", site.mount))
    site.apply()
    site.write("parchment", outgoing_yaml("parchment", site.mount, port=8443))
    site.apply()
    site.apply("--rotate", "cfnc")
    source_list = site.state_list()
    source_history = site.history()
    assert [h["serial"] for h in source_history] == [3, 2, 1]
    record = site.record("incoming", "cfnc")

    moved = site.ok("state", "migrate", "--to", pg_db_url)
    assert "serial 3" in moved.stdout

    on_pg = ("--state", pg_db_url)
    assert site.run(*on_pg, "plan", "--detailed-exitcode").exit_code == 0
    target_list = site.state_list(at=pg_db_url)
    assert target_list == source_list  # lineage, serial, every connection and its outputs
    assert site.history(at=pg_db_url) == source_history
    # the rows themselves, with the client secret's digest that `state list` leaves out
    assert site.record("incoming", "cfnc", at=pg_db_url) == record

    # the source is untouched, and the target is not overwritten by a second migrate
    again = site.run("state", "migrate", "--to", pg_db_url)
    assert again.exit_code == 1, (again.stdout, again.stderr)
    message = again.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert "district-42" in message and "not empty" in message and "refusing" in message
    assert site.state_list() == source_list
    assert site.state_list(at=pg_db_url) == target_list

    # applies continue on PostgreSQL from the copied serial and lineage
    site.write("parchment", outgoing_yaml("parchment", site.mount, port=9443))
    applied = site.ok(*on_pg, "apply", "--auto-approve", "--no-test")
    assert "Serial 4." in applied.stdout
    assert site.state_list(at=pg_db_url)["lineage"] == source_list["lineage"]
