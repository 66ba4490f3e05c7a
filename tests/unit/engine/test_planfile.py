"""Saved plans: what they are bound to, and the one-line reason they go stale."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from erelease.engine.plan import Change, FieldDiff, Plan
from erelease.engine.planfile import check_current, load_plan, save_plan
from erelease.errors import PlanError, StalePlan


def a_plan(token_url: str = "https://d.example/campus/oauth2/token?appName=x") -> Plan:
    after = {"appName": "x", "tokenUrl": token_url, "protect": False}
    return Plan(
        stack="s",
        lineage="L",
        serial=2,
        config_digest="d" * 64,
        changes=[
            Change("incoming/x", "incoming", "x", "create", after=after),
            Change(
                "outgoing/y",
                "outgoing",
                "y",
                "update",
                diffs=[FieldDiff("uploadPort", 80, 443)],
                before={"uploadPort": 80},
                after={"uploadPort": 443},
            ),
        ],
        vault_versions={"secret/erelease/y": 3},
    )


def test_an_unchanged_plan_is_current(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    save_plan(a_plan(), path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    check_current(load_plan(path), a_plan())


def test_the_same_actions_with_other_values_are_stale(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    save_plan(a_plan(), path)
    fresh = a_plan(token_url="https://elsewhere.example/campus/oauth2/token?appName=x")
    with pytest.raises(StalePlan, match="differ from the saved plan"):
        check_current(load_plan(path), fresh)


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("serial", 3, "serial moved from 2 to 3"),
        ("lineage", "M", "lineage differs"),
        ("config_digest", "e" * 64, "configuration changed"),
        ("vault_versions", {"secret/erelease/y": 4}, "secret/erelease/y moved from v3 to v4"),
        (
            "vault_versions",
            {"secret/erelease/y": 3, "secret/erelease/x": 1},
            r"secret/erelease/x was written \(now v1\)",
        ),
        ("vault_versions", {}, r"secret/erelease/y is gone \(it was v3\)"),
    ],
)
def test_each_binding_element_makes_it_stale(
    tmp_path: Path, field: str, value: object, said: str
) -> None:
    path = tmp_path / "plan.json"
    save_plan(a_plan(), path)
    fresh = copy.copy(a_plan())
    setattr(fresh, field, value)
    with pytest.raises(StalePlan, match=said) as caught:
        check_current(load_plan(path), fresh)
    assert caught.value.exit_code == 5


@pytest.mark.parametrize(
    "content",
    [
        "",
        "[]",
        '{"format_version": "1", "changes": "x"}',
        '{"format_version": "1", "changes": [1]}',
    ],
)
def test_a_damaged_plan_file_is_one_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    assert caught.value.exit_code == 1 and str(path) in str(caught.value)


def test_a_hand_edited_change_makes_it_stale(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    save_plan(a_plan(), path)
    data = json.loads(path.read_text())
    data["changes"][1]["after"]["uploadPort"] = 8443
    path.write_text(json.dumps(data))
    with pytest.raises(StalePlan):
        check_current(load_plan(path), a_plan())
