"""PostgreSQL failures become one clear sentence, and only safe ones are retried."""

from __future__ import annotations

import psycopg
import psycopg.errors
import pytest
from psycopg.conninfo import conninfo_to_dict

from erelease.state._pg_conn import (
    connect_error,
    connection_lost,
    conninfo,
    query_error,
    retry_transaction,
)

WHERE = "postgresql://erelease:***@db.example/registry"


@pytest.mark.parametrize(
    ("libpq", "expected"),
    [
        (
            'connection to server at "10.0.0.5", port 5432 failed: FATAL:  password '
            'authentication failed for user "erelease"',
            "refused the login: authentication failed",
        ),
        (
            'connection to server at "10.0.0.5", port 5432 failed: Connection refused\n'
            "\tIs the server running on that host and accepting TCP/IP connections?",
            "cannot reach PostgreSQL at postgresql://erelease:***@db.example/registry: "
            "Connection refused",
        ),
        (
            "failed to resolve host 'db.example': [Errno -2] Name or service not known",
            "cannot reach PostgreSQL",
        ),
        (
            'connection to server on socket "/run/pg/.s.PGSQL.5432" failed: FATAL:  '
            'database "registry" does not exist',
            'database "registry" does not exist',
        ),
        (
            'connection to server at "db" failed: SSL error: certificate verify failed',
            "TLS to PostgreSQL",
        ),
        ('connection to server at "db" failed: timeout expired', "timeout expired"),
    ],
)
def test_connect_failures_are_explained(libpq: str, expected: str) -> None:
    message = str(connect_error(psycopg.OperationalError(libpq), WHERE))
    assert expected in message
    assert "FATAL" not in message


def test_what_is_retried() -> None:
    assert retry_transaction(psycopg.errors.SerializationFailure())
    assert retry_transaction(psycopg.errors.DeadlockDetected())
    assert not retry_transaction(psycopg.errors.UniqueViolation())
    assert connection_lost(psycopg.errors.AdminShutdown(), None)
    assert connection_lost(psycopg.OperationalError("consuming input failed"), None)
    assert not connection_lost(psycopg.errors.UniqueViolation(), None)


def test_statement_failures_are_explained() -> None:
    lost = query_error(psycopg.OperationalError("x"), WHERE, "commit", lost=True)
    assert "lost the connection" in str(lost)
    denied = query_error(psycopg.errors.InsufficientPrivilege("x"), WHERE, "commit", lost=False)
    assert "permission denied" in str(denied) and "CREATE" in str(denied)
    assert "read-only" in str(
        query_error(psycopg.errors.ReadOnlySqlTransaction("x"), WHERE, "commit", lost=False)
    )


def test_conninfo_adds_defaults_but_keeps_the_url() -> None:
    params = conninfo_to_dict(
        conninfo("postgresql://u:p@db/r?connect_timeout=3&options=-c%20statement_timeout%3D5s")
    )
    assert params["connect_timeout"] == "3"
    assert params["application_name"] == "erelease"
    assert params["options"] == "-c statement_timeout=5s"
    assert params["password"] == "p" and params["host"] == "db"
