"""A password in the PostgreSQL state URL shows up in no output, log, file or table.

The unit-level masking of every URL form is proven in the state tests; this
drives the real CLI (``-vv``, every format) through success and failure paths
— a lock held by someone else, a missing database, a crash, a migration —
with a role that really logs in with that password, and then reads every
table erelease owns and the SQLite copy a migration wrote.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import psycopg

from erelease.state import open_store
from tests.fixtures.common import CANARY
from tests.fixtures.openbao import OpenBaoServer
from tests.fixtures.postgres import LocalPostgres
from tests.integration.security.conftest import incoming, make_district, outgoing


def test_a_state_url_password_never_leaks(
    tmp_path: Path,
    openbao: OpenBaoServer,
    openbao_kv: str,
    pg_server: LocalPostgres,
    pg_db_url: str,
    hostile_vendor: str,
) -> None:
    user, password = f"sec_{secrets.token_hex(4)}", CANARY + "-pg"
    pg_server.add_password_user(user, password)
    database = pg_db_url.split("/")[3].split("?")[0]
    pg_server.execute(f'GRANT ALL ON DATABASE "{database}" TO "{user}"')
    url = pg_server.database_url(database, user=user, password=password)
    district = make_district(tmp_path, openbao, openbao_kv, state=url)
    district.write("cfnc", incoming("cfnc", district.mount))
    district.write("vendor", outgoing("vendor", district.mount, hostile_vendor, "/echo"))
    missing = pg_server.database_url("no_such_db", user=user, password=password)
    wrong = pg_server.database_url(database, user=user, password=password + "-wrong")
    copy = tmp_path / "copy.db"
    runs = [
        district.run(*v, *args)
        for v in ((), ("-vv",))
        for args in (
            ("plan", "--format", "json", "--out", str(tmp_path / "plan.json")),
            ("plan", "--format", "markdown"),
            ("apply", "--auto-approve"),
            ("test", "--format", "json"),
            ("show", "--format", "json"),
            ("state", "list"),
            ("state", "history", "--format", "json"),
            ("disclosures", "--format", "json"),
            ("--state", missing, "plan"),
            ("--state", wrong, "state", "list"),
            ("state", "unlock", "12345"),
        )
    ]
    store = open_store(url)
    try:
        with store.acquire_lock(stack="security", operation="apply"):
            locked = [district.run(*v, "apply", "--auto-approve") for v in ((), ("-vv",))]
    finally:
        store.close()
    assert [r.code for r in locked] == [4, 4]
    migrated = district.run("-vv", "state", "migrate", "--to", f"sqlite:///{copy}")
    assert migrated.code == 0, migrated.stderr
    codes = [r.code for r in runs]
    assert codes[:2] == [0, 0] and codes[2] == 3 and codes[8:10] == [1, 1], codes
    assert any("***" in r.stderr for r in runs)  # the failures do name the (masked) URL
    texts = [r.stdout + r.stderr for r in [*runs, *locked, migrated]]
    texts.append((tmp_path / "plan.json").read_text(encoding="utf-8"))
    texts += [p.read_bytes().decode("latin-1") for p in tmp_path.glob("copy.db*")]
    with psycopg.connect(pg_db_url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'erelease'"
        ).fetchall()
        assert len(tables) >= 6
        for (table,) in tables:
            texts.append(repr(conn.execute(f'SELECT * FROM erelease."{table}"').fetchall()))
        texts.append(repr(conn.execute("SELECT * FROM pg_stat_activity").fetchall()))
    client_secret = district.client_secret("cfnc")
    for text in texts:
        for value in (password, CANARY, client_secret):
            assert value not in text
