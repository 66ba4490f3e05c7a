"""Tables for the terminal: the Setup page (``show``), test results, state and history.

Like the Electronic Release Setup page: an Outgoing table (Name, Auth Server,
Upload Server, last test) and an Incoming table (Name, Client ID, last test);
one connection's details end with its Information to Share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import click

from erelease.model import (
    INCOMING,
    OUTGOING,
    CheckResult,
    ConnectionRecord,
    HistoryEntry,
    LockInfo,
    Secret,
    StackInfo,
)
from erelease.render.style import Style

__all__ = [
    "connection_detail",
    "history_table",
    "registry_tables",
    "state_list",
    "table",
    "test_table",
    "upload_address",
]


def _width(cell: str) -> int:
    """Visible width: colour codes take no room on the screen."""
    return len(click.unstyle(cell))


def _pad(cell: str, width: int) -> str:
    return cell + " " * (width - _width(cell))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; header underlined with dashes."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], _width(cell))
    lines = ["  ".join(_pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(_pad(c, w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"


def _last_test(result: CheckResult | None, style: Style) -> str:
    if result is None:
        return "not yet tested"
    if result.status == "valid":
        return style.paint("Your connection is valid", "green")
    if result.status == "untested":
        return "not yet tested"
    return style.paint(f"Connection failed ({result.reason})", "red")


def _is_ref(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("ref+vault://", "ref+openbao://"))


def upload_address(spec: Mapping[str, Any]) -> str:
    """``scheme://host:uploadPort``: where the upload test connects, its port said once.

    ``uploadServer`` may already name the port (validation makes it equal to
    ``uploadPort``), so the port is taken from ``uploadPort`` and any port in
    the server URL is dropped rather than appended a second time. An IPv6
    literal keeps its brackets (RFC 3986 §3.2.2).
    """
    server, port = spec.get("uploadServer"), spec.get("uploadPort")
    if server is None:
        return ""
    if _is_ref(server):
        where = str(server).split("://", 1)[1]
        return f"(in Vault) {where}" + (f", port {port}" if port is not None else "")
    text = str(server)
    try:
        parts = urlsplit(text)
        host = parts.hostname
        named = parts.port
    except ValueError:
        return text
    if not parts.scheme or not host:
        return text
    if ":" in host:
        host = f"[{host}]"
    if port is None:
        port = named
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def registry_tables(records: Sequence[ConnectionRecord], style: Style) -> str:
    outgoing = [r for r in records if r.kind == OUTGOING]
    incoming = [r for r in records if r.kind == INCOMING]
    parts = [style.bold("Outgoing")]
    if outgoing:
        parts.append(
            table(
                ["Name", "Auth Server", "Upload Server", "Last test"],
                [
                    [
                        r.name,
                        _field(r, "authServer"),
                        upload_address(r.spec),
                        _last_test(r.last_test, style),
                    ]
                    for r in outgoing
                ],
            )
        )
    else:
        parts.append("(none)\n")
    parts.append(style.bold("Incoming"))
    if incoming:
        parts.append(
            table(
                ["Name", "Client ID", "Last test"],
                [
                    [r.name, str(r.outputs.get("clientId", "")), _last_test(r.last_test, style)]
                    for r in incoming
                ],
            )
        )
    else:
        parts.append("(none)\n")
    return "\n".join(p.rstrip("\n") for p in parts) + "\n"


_OUTGOING_LABELS = [
    ("vendor", "Vendor"),
    ("authServer", "Auth Server"),
    ("authPath", "Auth Path"),
    ("uploadServer", "Upload Server"),
    ("uploadPort", "Upload Port"),
    ("uploadPath", "Upload Path"),
    ("consumerKey", "Consumer Key"),
    ("consumerSecret", "Consumer Secret"),
    ("username", "User Name"),
    ("password", "Password"),
    ("grantType", "Grant Type"),
    ("clientAuth", "Client Auth"),
]


def _field(record: ConnectionRecord, key: str) -> str:
    value: Any = record.spec.get(key)
    if _is_ref(value):
        version = record.secret_versions.get(key)
        where = value.split("://", 1)[1]
        return f"(in Vault) {where}" + (f" v{version}" if version is not None else "")
    return "" if value is None else str(value)


def connection_detail(
    record: ConnectionRecord, style: Style, *, revealed: Secret | None = None
) -> str:
    lines = [style.bold(record.address)]
    if record.kind == OUTGOING:
        pairs = [(label, _field(record, key)) for key, label in _OUTGOING_LABELS]
        pairs = [(k, v) for k, v in pairs if v]
    else:
        pairs = (
            [("Provider", str(record.spec.get("provider", "")))]
            if record.spec.get("provider")
            else []
        )
        pairs.append(("App Name", str(record.outputs.get("appName", ""))))
        pairs.append(("Rotation", str(record.spec.get("rotation", 0))))
    if record.labels:
        pairs.append(("Labels", ", ".join(f"{k}={v}" for k, v in sorted(record.labels.items()))))
    pairs.append(("Protect", "yes" if record.protect else "no"))
    pairs.append(("Applied", record.updated_at))
    test = record.last_test
    pairs.append(("Last test", _last_test(test, style)))
    if test is not None and test.status != "untested":
        pairs.append(("", f"{test.message} ({test.duration_ms} ms, {test.checked_at})"))
    width = max(len(k) for k, _ in pairs) + 1
    lines += [f"  {(k + ':') if k else ''}".ljust(width + 3) + v for k, v in pairs]
    if record.kind == INCOMING:
        out = record.outputs
        cred = str(record.spec.get("credentials", "")).split("://", 1)[-1]
        version = out.get("credentialsVersion")
        secret_text = (
            revealed.reveal()
            if revealed is not None
            else f"in Vault at {cred}#client_secret"
            + (f" (v{version})" if version is not None else "")
            + " — show it with --reveal"
        )
        share = [
            ("eTranscripts URL", str(out.get("eTranscriptsUrl", ""))),
            ("Token URL", str(out.get("tokenUrl", ""))),
            ("Client ID", str(out.get("clientId", ""))),
            ("Client Secret", secret_text),
        ]
        lines.append("")
        lines.append(style.bold("  Information to Share"))
        w = max(len(k) for k, _ in share) + 1
        lines += [f"    {(k + ':').ljust(w)} {v}" for k, v in share]
    return "\n".join(lines) + "\n"


def test_table(results: Sequence[CheckResult], style: Style) -> str:
    rows = []
    for r in results:
        status = (
            style.paint("valid", "green") if r.status == "valid" else style.paint(r.status, "red")
        )
        rows.append([r.address, status, r.reason, f"{r.duration_ms} ms", r.message])
    valid = sum(1 for r in results if r.status == "valid")
    body = table(["Connection", "Status", "Reason", "Time", "Detail"], rows)
    return body + f"{valid} valid, {len(results) - valid} failed.\n"


def state_list(
    info: StackInfo | None, records: Sequence[ConnectionRecord], lock: LockInfo | None
) -> str:
    if info is None:
        return "Nothing applied yet.\n"
    lines = [f"stack {info.stack}  lineage {info.lineage}  serial {info.serial}"]
    if lock is not None:
        lines.append(f"locked by {lock.describe()}")
    body = table(
        ["Address", "Protect", "Updated", "Last test"],
        [
            [
                r.address,
                "yes" if r.protect else "no",
                r.updated_at,
                r.last_test.status
                if r.last_test and r.last_test.status != "untested"
                else "not yet tested",
            ]
            for r in records
        ],
    )
    return "\n".join(lines) + "\n" + body


def history_table(entries: Sequence[HistoryEntry]) -> str:
    if not entries:
        return "No applies yet.\n"
    rows = []
    for e in entries:
        summary = ", ".join(f"{v} {k}" for k, v in e.summary.items() if v) or "no changes"
        rows.append([str(e.serial), e.applied_at, e.actor, (e.git_commit or "")[:12], summary])
    return table(["Serial", "Applied", "Actor", "Commit", "Summary"], rows)
