"""More of the plan/apply lifecycle through the CLI: the Setup page, NAMEs, history, tests.

Each test drives ``erelease`` as a user would, against the real OpenBao dev
server and a real SQLite registry file.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.engine.conftest import District, incoming_yaml, outgoing_yaml


def _apply(d: District, *args: str) -> None:
    result = d.run("apply", "--auto-approve", "--no-test", *args)
    assert result.exit_code == 0, result.output + result.stderr


def test_show_names_the_upload_port_once(district: District) -> None:
    district.put_vendor_secret("parchment")
    # uploadServer may name the port too (validation makes it equal to uploadPort).
    district.write(
        "parchment",
        outgoing_yaml("parchment", district.mount, port=42015, server="https://127.0.0.1:42015"),
    )
    district.put_vendor_secret("nsc")
    district.write("nsc", outgoing_yaml("nsc", district.mount, port=8443))
    _apply(district)
    shown = district.run("show")
    assert shown.exit_code == 0, shown.output + shown.stderr
    rows = {line.split()[0]: line.split() for line in shown.stdout.splitlines() if line}
    assert rows["parchment"][2] == "https://127.0.0.1:42015"
    assert rows["nsc"][2] == "https://auth.vendor.example:8443"
    assert "42015:42015" not in shown.stdout


def test_plan_shows_auth_path_normalised_and_the_normal_form_is_noop(district: District) -> None:
    district.put_vendor_secret("parchment")
    district.write("parchment", outgoing_yaml("parchment", district.mount))  # oauth/token
    data = district.json("plan")
    [change] = data["changes"]
    assert change["after"]["authPath"] == "/oauth/token"
    assert change["after"]["uploadPath"] == "/upload"
    _apply(district)
    text = (district.path / "connections.d" / "parchment.yaml").read_text()
    district.write("parchment", text.replace("authPath: oauth/token", "authPath: /oauth/token"))
    assert district.run("plan", "--detailed-exitcode").exit_code == 0


def test_ambiguous_name_needs_its_kind(district: District) -> None:
    district.put_vendor_secret("ncs")
    district.write("ncs", outgoing_yaml("ncs", district.mount))
    district.write("ncs-in", incoming_yaml("ncs", district.mount))
    result = district.run("plan", "--target", "ncs")
    assert result.exit_code == 64
    assert "incoming/ncs" in result.stderr and "outgoing/ncs" in result.stderr
    assert "Traceback" not in result.stderr
    one = district.json("plan", "--target", "outgoing/ncs")
    assert [c["address"] for c in one["changes"]] == ["outgoing/ncs"]
    _apply(district)
    assert district.run("show", "ncs").exit_code == 64
    assert district.json("show", "incoming/ncs")["kind"] == "incoming"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rotate", "outgoing/parchment"), "only incoming connections"),
        (("--rotate", "cfnc", "--target", "parchment"), "outside the --target list"),
        (("--rotate", "nosuch"), "no connection named 'nosuch'"),
    ],
)
def test_a_rotate_that_would_do_nothing_is_a_usage_error(
    district: District, args: tuple[str, ...], message: str
) -> None:
    district.put_vendor_secret("parchment")
    district.write("parchment", outgoing_yaml("parchment", district.mount))
    district.write("cfnc", incoming_yaml("cfnc", district.mount))
    _apply(district)
    for command in ("plan", "apply"):
        extra = ("--auto-approve",) if command == "apply" else ()
        result = district.run(command, *extra, *args)
        assert result.exit_code == 64, result.output + result.stderr
        assert message in result.stderr
    assert district.rows("select count(*) from history")[0][0] == 1


def test_rotating_a_connection_that_left_the_config_is_refused(district: District) -> None:
    district.write("cfnc", incoming_yaml("cfnc", district.mount))
    _apply(district)
    district.remove("cfnc")
    result = district.run("plan", "--rotate", "cfnc")
    assert result.exit_code == 64 and "left the configuration" in result.stderr


def test_plan_json_carries_the_credentials_version(district: District) -> None:
    district.write("cfnc", incoming_yaml("cfnc", district.mount))
    _apply(district)
    ref = f"{district.mount}/erelease/incoming/cfnc"
    [noop] = district.json("plan")["changes"]
    assert noop["action"] == "noop"
    assert noop["before"]["credentials"] == {"ref": ref, "version": 1}
    assert noop["after"]["credentials"] == {"ref": ref, "version": 1}
    [rotate] = district.json("plan", "--rotate", "cfnc")["changes"]
    assert rotate["action"] == "rotate" and rotate["changed_fields"] == []
    assert rotate["before"]["credentials"] == {"ref": ref, "version": 1}
    assert rotate["after"]["credentials"] == {"ref": ref, "version": None}  # minted by apply
    district.bao.kv_put(
        district.mount, "erelease/incoming/cfnc", {"client_id": "x", "client_secret": "y"}
    )
    [drift] = district.json("plan")["changes"]
    assert drift["action"] == "rotate"
    assert drift["reasons"] == ["credentials changed in Vault outside erelease (v1 -> v2)"]


def test_changed_connections_are_not_yet_tested_after_apply_no_test(district: District) -> None:
    district.put_vendor_secret("parchment")
    # Nothing listens on port 9: the test fails, and that result is recorded.
    server = "https://127.0.0.1:9"
    district.write("parchment", outgoing_yaml("parchment", district.mount, server=server, port=9))
    district.write("cfnc", incoming_yaml("cfnc", district.mount))
    applied = district.run("apply", "--auto-approve")
    assert applied.exit_code == 3, applied.output + applied.stderr
    assert "Connection failed" in district.run("show").stdout

    district.write("cfnc", incoming_yaml("cfnc", district.mount, rotation=1))
    _apply(district)
    shown = district.run("show").stdout
    lines = {line.split()[0]: line for line in shown.splitlines() if line}
    assert lines["cfnc"].endswith("not yet tested")  # rotated: the old result is void
    assert "Connection failed (connect)" in lines["parchment"]  # unchanged: still true
    assert district.json("show", "cfnc")["last_test"] is None
    assert district.json("show", "parchment")["last_test"]["status"] == "failed"
    listed = district.run("state", "list").stdout
    assert any("incoming/cfnc" in x and "not yet tested" in x for x in listed.splitlines())


def test_read_only_commands_create_no_registry(district: District, tmp_path: Path) -> None:
    district.put_vendor_secret("parchment")
    district.write("parchment", outgoing_yaml("parchment", district.mount))
    typo = tmp_path / "no-such-dir" / "state.db"
    for args in (
        ("plan",),
        ("plan", "--format", "json"),
        ("show",),
        ("state", "list"),
        ("state", "history"),
        ("test",),
    ):
        for state in ((), ("--state", f"sqlite:///{typo}")):
            result = district.run(*state, *args)
            assert result.exit_code == 0, (args, result.output, result.stderr)
    plan = district.json("plan")
    assert plan["serial"] == 0 and plan["lineage"] is None
    shown = district.run("show", "parchment")
    assert shown.exit_code == 64
    assert "no connection named 'parchment' applied in this stack" in shown.stderr
    unlock = district.run("state", "unlock", "some-id")
    assert unlock.exit_code == 1 and "not locked" in unlock.stderr
    assert not district.state_file.exists()
    assert not typo.parent.exists()
    _apply(district)  # apply is what creates it
    assert district.state_file.exists()


def test_show_of_a_connection_not_applied_yet_says_so(district: District) -> None:
    district.put_vendor_secret("parchment")
    district.write("parchment", outgoing_yaml("parchment", district.mount))
    _apply(district)
    district.write("cfnc", incoming_yaml("cfnc", district.mount))
    result = district.run("show", "cfnc")
    assert result.exit_code == 64
    assert "no connection named 'cfnc' applied in this stack" in result.stderr
    assert "run 'erelease apply' first" in result.stderr


def test_history_rows_carry_actor_and_git_commit(
    district: District, monkeypatch: pytest.MonkeyPatch
) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(district.path), *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    district.write("cfnc", incoming_yaml("cfnc", district.mount))
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=ci", "-c", "user.email=ci@example.org", "commit", "-qm", "cfnc")
    monkeypatch.setenv("ERELEASE_ACTOR", "pipeline-42")
    _apply(district)
    history = json.loads(district.run("state", "history", "--format", "json").stdout)
    assert history[0]["actor"] == "pipeline-42"
    assert history[0]["git_commit"] == git("rev-parse", "HEAD")
    text = district.run("state", "history").stdout
    assert "pipeline-42" in text and git("rev-parse", "HEAD")[:12] in text


def test_new_rows_have_one_clock(district: District) -> None:
    district.write("cfnc", incoming_yaml("cfnc", district.mount))
    _apply(district)
    shown = district.json("show", "cfnc")
    assert shown["created_at"] == shown["updated_at"]
    district.write("cfnc", incoming_yaml("cfnc", district.mount, rotation=1))
    _apply(district)
    again = district.json("show", "cfnc")
    assert again["created_at"] == shown["created_at"]
    assert again["updated_at"] > shown["updated_at"]


def test_protected_incoming_delete_is_flagged_in_the_plan_and_refused(district: District) -> None:
    district.write("cfnc", incoming_yaml("cfnc", district.mount, protect=True))
    _apply(district)
    district.remove("cfnc")
    plan = district.run("plan")
    assert "- incoming/cfnc" in plan.stdout and "# protected: apply refuses" in plan.stdout
    [change] = district.json("plan")["changes"]
    assert change["action"] == "delete" and change["reasons"][0].startswith("protected")
    assert "protected" in district.run("plan", "--format", "markdown").stdout

    refused = district.run("apply", "--auto-approve", "--no-test", "--allow-delete")
    assert refused.exit_code == 1 and "protected" in refused.stderr
    assert district.vault_data("erelease/incoming/cfnc") is not None  # nothing was changed
    assert district.rows("select count(*) from history")[0][0] == 1

    # Unprotect in one apply, delete in the next (SPEC §5.4).
    district.write("cfnc", incoming_yaml("cfnc", district.mount, protect=False))
    _apply(district)
    district.remove("cfnc")
    _apply(district, "--allow-delete")
    assert district.vault_data("erelease/incoming/cfnc") is None
    assert district.json("show")["connections"] == []


def test_a_saved_plan_takes_no_target_or_rotate(district: District, tmp_path: Path) -> None:
    district.write("cfnc", incoming_yaml("cfnc", district.mount))
    plan_file = tmp_path / "plan.json"
    assert district.run("plan", "--out", str(plan_file)).exit_code == 0
    result = district.run("apply", str(plan_file), "--target", "cfnc")
    assert result.exit_code == 64 and "come from the saved plan" in result.stderr


def test_a_saved_plan_is_stale_when_a_setting_from_the_environment_moves(
    district: District, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    district.write("cfnc", incoming_yaml("cfnc", district.mount))
    plan_file = tmp_path / "plan.json"
    assert district.run("plan", "--out", str(plan_file)).exit_code == 0
    # Same files, same registry, same Vault: only what apply would write differs.
    monkeypatch.setenv("ERELEASE_INCOMING_BASE_URL", "https://district.example.org/campus")
    result = district.run("apply", str(plan_file), "--no-test")
    assert result.exit_code == 5, result.output + result.stderr
    assert "differ from the saved plan" in result.stderr
    assert not district.state_file.exists() or district.json("show")["connections"] == []
    assert district.vault_data("erelease/incoming/cfnc") is None
    monkeypatch.delenv("ERELEASE_INCOMING_BASE_URL")
    applied = district.run("apply", str(plan_file), "--no-test")
    assert applied.exit_code == 0, applied.output + applied.stderr
