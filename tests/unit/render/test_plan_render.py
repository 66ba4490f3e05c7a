"""Plan renderers: the text layout of SPEC §3.2, JSON keys, and the Markdown size bound."""

from __future__ import annotations

import json

from erelease.engine.plan import Change, FieldDiff, Plan
from erelease.model import ConnectionRecord
from erelease.render.plan import MARKDOWN_LIMIT, plan_json, plan_markdown, plan_text
from erelease.render.style import Style


def sample_plan() -> Plan:
    oldco = ConnectionRecord(
        kind="incoming", name="oldco", spec={}, outputs={"clientId": "LKJr1Btyw5B22Avs"}
    )
    return Plan(
        stack="district-42",
        lineage="L",
        serial=7,
        config_digest="abc123" * 10,
        vault_versions={},
        changes=[
            Change("outgoing/parchment", "outgoing", "parchment", "create", after={"a": 1}),
            Change(
                "outgoing/ncs",
                "outgoing",
                "ncs",
                "update",
                diffs=[
                    FieldDiff("uploadPort", 80, 443),
                    FieldDiff(
                        "password",
                        {"ref": "secret/erelease/ncs#password", "version": 3},
                        {"ref": "secret/erelease/ncs#password", "version": 4},
                        sensitive=True,
                    ),
                ],
            ),
            Change("incoming/oldco", "incoming", "oldco", "delete", record=oldco),
            Change("incoming/cfnc", "incoming", "cfnc", "rotate", reasons=["--rotate"]),
            Change("incoming/same", "incoming", "same", "noop"),
        ],
    )


def test_text_matches_the_contract_layout() -> None:
    text = plan_text(sample_plan(), Style(colour=False))
    lines = text.splitlines()
    assert lines[0].startswith("  + outgoing/parchment") and lines[0].endswith("create")
    assert "      uploadPort: 80 -> 443" in lines
    assert "      password: (sensitive) secret/erelease/ncs#password v3 -> v4" in lines
    assert any("- incoming/oldco" in x and "(revokes client LKJr1Btyw5B22Avs)" in x for x in lines)
    assert any(x.startswith("  ± incoming/cfnc") for x in lines)
    assert "incoming/same" not in text
    assert lines[-1] == "Plan: 1 to create, 1 to update, 1 to delete, 1 to rotate."
    assert "\x1b[" not in text


def test_text_lists_creates_updates_deletes_then_rotations() -> None:
    """As in SPEC §3.2's example, whatever order the plan holds its changes in."""
    plan = sample_plan()
    plan.changes.sort(key=lambda c: c.address)  # the engine's order: by address
    heads = [x.split()[1] for x in plan_text(plan, Style(colour=False)).splitlines()[:-1]]
    heads = [x for x in heads if "/" in x]
    assert heads == ["outgoing/parchment", "outgoing/ncs", "incoming/oldco", "incoming/cfnc"]


def test_text_colours_only_when_asked() -> None:
    assert "\x1b[" in plan_text(sample_plan(), Style(colour=True))


def test_json_has_the_contract_keys() -> None:
    data = json.loads(plan_json(sample_plan()))
    assert data["format_version"] == "1"
    for key in ("stack", "lineage", "serial", "config_digest", "has_changes", "summary", "changes"):
        assert key in data
    assert data["summary"] == {"create": 1, "update": 1, "delete": 1, "rotate": 1, "noop": 1}
    change = data["changes"][1]
    assert set(change) >= {"address", "kind", "name", "action", "changed_fields", "before", "after"}
    assert change["changed_fields"] == ["uploadPort", "password"]


def test_markdown_summary_first_and_details_folded() -> None:
    md = plan_markdown(sample_plan())
    table_at = md.index("| create | update | delete | rotate |")
    assert table_at < md.index("<details>")
    assert "| 1 | 1 | 1 | 1 | 1 |" in md
    assert "--allow-delete" in md


def test_markdown_stays_under_the_limit_for_5000_changes() -> None:
    changes = [
        Change(
            f"outgoing/vendor-{i:05d}",
            "outgoing",
            f"vendor-{i:05d}",
            "update",
            diffs=[FieldDiff("uploadPath", f"/old/{i}" * 5, f"/new/{i}" * 5)],
        )
        for i in range(5000)
    ]
    plan = Plan("big", "L", 1, "d" * 64, changes, {})
    md = plan_markdown(plan)
    assert len(md) < MARKDOWN_LIMIT
    assert "| 0 | 5000 | 0 | 0 | 0 |" in md
    assert "more change(s) not shown" in md
    assert md.count("```") == 2


def test_coloured_table_cells_keep_columns_aligned() -> None:
    from erelease.model import CheckResult
    from erelease.render.tables import test_table

    results = [
        CheckResult("outgoing/a", "outgoing", "a", "valid", "ok", "fine", 5),
        CheckResult("outgoing/bb", "outgoing", "bb", "failed", "dns", "no such host", 7),
    ]
    plain = test_table(results, Style(colour=False)).splitlines()
    coloured = test_table(results, Style(colour=True)).splitlines()
    assert "\x1b[" in "".join(coloured)
    import click

    assert [click.unstyle(line) for line in coloured] == plain


def test_a_value_cannot_forge_plan_lines_or_terminal_escapes() -> None:
    forged = "x\n  - incoming/everything   delete"
    plan = Plan(
        "s",
        "L",
        1,
        "d" * 64,
        [
            Change(
                "outgoing/a",
                "outgoing",
                "a",
                "update",
                diffs=[FieldDiff("vendor", "A", forged), FieldDiff("uploadPath", "/a", "/\x1b[2J")],
            )
        ],
        {},
    )
    for text in (plan_text(plan, Style(colour=False)), plan_markdown(plan)):
        assert not any(line.lstrip().startswith("- incoming/") for line in text.splitlines())
        assert "\x1b" not in text
    text = plan_text(plan, Style(colour=False))
    assert '      vendor: A -> "x\\n  - incoming/everything   delete"' in text.splitlines()
    assert '      uploadPath: /a -> "/\\u001b[2J"' in text.splitlines()
