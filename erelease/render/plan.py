"""Plans as text (terminal), JSON (machines, saved plans) and Markdown (PR comments).

Every renderer shows secret fields only as ``reference vN`` — the engine never
hands them anything else, and these functions add nothing from elsewhere.
"""

from __future__ import annotations

import json
from typing import Any

from erelease.engine import Change, FieldDiff, Plan, plan_to_dict
from erelease.render.style import Style

__all__ = ["MARKDOWN_LIMIT", "plan_json", "plan_markdown", "plan_text", "summary_line"]

#: GitHub refuses comments over 65,536 characters; stay well under.
MARKDOWN_LIMIT = 60_000

_SYMBOLS = {"create": "+", "update": "~", "delete": "-", "rotate": "±", "noop": " "}
_ORDER = {"create": 0, "update": 1, "delete": 2, "rotate": 3, "noop": 4}
_COLOURS = {"create": "green", "update": "yellow", "delete": "red", "rotate": "cyan"}


def _value(value: Any) -> str:
    if isinstance(value, dict) and "ref" in value:
        version = value.get("version")
        return f"{value['ref']}" + (f" v{version}" if version is not None else "")
    if value is None:
        return "(none)"
    if isinstance(value, str):
        # quoted when blank-edged or holding a line break or control character,
        # so that a value can never forge a plan line or a terminal escape
        plain = value != "" and value.strip() == value and value.isprintable()
        return value if plain else json.dumps(value)
    return json.dumps(value, sort_keys=True)


def diff_line(diff: FieldDiff) -> str:
    prefix = "(sensitive) " if diff.sensitive else ""
    old, new = diff.before, diff.after
    if (
        isinstance(old, dict)
        and isinstance(new, dict)
        and old.get("ref") == new.get("ref")
        and "ref" in old
    ):
        # Same reference, new KV version: "secret/x#password v3 -> v4" (SPEC §3.2).
        return f"{diff.field}: {prefix}{old['ref']} v{old.get('version')} -> v{new.get('version')}"
    return f"{diff.field}: {prefix}{_value(old)} -> {_value(new)}"


def _revokes(change: Change) -> str:
    if change.action == "delete" and change.record is not None:
        client = change.record.outputs.get("clientId")
        if client:
            return f"   (revokes client {client})"
    return ""


def summary_line(plan: Plan) -> str:
    s = plan.summary
    return (
        f"Plan: {s['create']} to create, {s['update']} to update, "
        f"{s['delete']} to delete, {s['rotate']} to rotate."
    )


def plan_text(plan: Plan, style: Style) -> str:
    """The terminal view of SPEC §3.2: creates, updates, deletes, then rotations."""
    changes = sorted(plan.actionable(), key=lambda c: _ORDER[c.action])  # stable: by address
    if not changes:
        return "No changes. The registry matches the configuration.\n"
    width = max(len(c.address) for c in changes)
    lines: list[str] = []
    for change in changes:
        colour = _COLOURS.get(change.action)
        head = f"  {_SYMBOLS[change.action]} {change.address.ljust(width)}   {change.action}"
        lines.append(style.paint(head + _revokes(change), colour))
        for reason in change.reasons:
            lines.append(style.dim(f"      # {reason}"))
        for diff in change.diffs:
            lines.append(f"      {diff_line(diff)}")
    lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


def plan_json(plan: Plan) -> str:
    return json.dumps(plan_to_dict(plan), indent=2) + "\n"


def _md_escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("`", "'")
    )


def plan_markdown(plan: Plan, *, limit: int = MARKDOWN_LIMIT) -> str:
    """A pull-request comment: summary table first, details folded, always < limit."""
    s = plan.summary
    head = [
        f"### erelease plan for `{_md_escape(plan.stack)}`",
        "",
        "| create | update | delete | rotate | unchanged |",
        "|---:|---:|---:|---:|---:|",
        f"| {s['create']} | {s['update']} | {s['delete']} | {s['rotate']} | {s['noop']} |",
        "",
    ]
    changes = plan.actionable()
    if not changes:
        head.append("No changes. The registry matches the configuration.")
        return "\n".join(head) + "\n"
    if s["delete"]:
        head.append(
            f"> **Warning:** this plan deletes {s['delete']} connection(s); "
            "apply needs `--allow-delete`."
        )
        head.append("")
    tail_reserve = 400
    body: list[str] = ["<details><summary>Changes</summary>", "", "```diff"]
    used = sum(len(x) + 1 for x in head) + sum(len(x) + 1 for x in body) + tail_reserve
    shown = 0
    for change in changes:
        block = [f"{_SYMBOLS[change.action]} {change.address} {change.action}{_revokes(change)}"]
        block += [f"    # {r}" for r in change.reasons]
        block += [f"    {diff_line(d)}" for d in change.diffs]
        block = [line.replace("```", "'''") for line in block]
        cost = sum(len(x) + 1 for x in block)
        if used + cost > limit:
            break
        body.extend(block)
        used += cost
        shown += 1
    body += ["```", ""]
    if shown < len(changes):
        body.append(
            f"_{len(changes) - shown} more change(s) not shown to keep this comment short; "
            "see the saved plan (JSON) for all of them._"
        )
        body.append("")
    body.append("</details>")
    body.append("")
    body.append(f"`serial {plan.serial}` · `config {plan.config_digest[:12]}`")
    return "\n".join(head + body) + "\n"
