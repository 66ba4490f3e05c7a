"""plan/apply end to end through the CLI, a real OpenBao dev server and a real SQLite file."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from erelease.state import open_store
from tests.integration.engine.conftest import District, incoming_yaml, outgoing_yaml


def setup_two(d: District) -> None:
    d.put_vendor_secret("parchment")
    d.write("parchment", outgoing_yaml("parchment", d.mount))
    d.write("cfnc", incoming_yaml("cfnc", d.mount))


def test_first_apply_then_noop(district: District) -> None:
    setup_two(district)
    plan = district.run("plan", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.output + plan.stderr
    assert "+ incoming/cfnc" in plan.stdout and "+ outgoing/parchment" in plan.stdout
    assert "Plan: 2 to create, 0 to update, 0 to delete, 0 to rotate." in plan.stdout

    applied = district.run("apply", "--auto-approve", "--no-test")
    assert applied.exit_code == 0, applied.output + applied.stderr
    assert "Applied. Serial 1." in applied.stdout

    again = district.run("plan", "--detailed-exitcode")
    assert again.exit_code == 0, again.output + again.stderr
    assert "No changes" in again.stdout
    noop = district.run("apply", "--auto-approve")
    assert noop.exit_code == 0 and "No changes" in noop.stdout

    # State file is private, and the registry holds the minted client's digest only.
    assert stat.S_IMODE(os.stat(district.state_file).st_mode) == 0o600
    creds = district.vault_data("erelease/incoming/cfnc")
    assert creds is not None and len(creds["client_id"]) == 16 and creds["client_id"].isalnum()
    assert len(creds["client_secret"]) >= 43  # >= 256 bits, url-safe base64
    show = district.json("show", "cfnc")
    assert show["outputs"]["clientId"] == creds["client_id"]
    assert show["outputs"]["tokenUrl"] == "http://127.0.0.1:9/campus/oauth2/token?appName=appcfnc"
    assert show["outputs"]["eTranscriptsUrl"].endswith("/campus/api/campus/transcript/eTranscripts")
    with open_store(f"sqlite:///{district.state_file}") as store:
        record = store.get_connection(stack="district-42", kind="incoming", name="cfnc")
        assert record is not None
        expected = hashlib.sha256(creds["client_secret"].encode()).hexdigest()
        assert record.outputs["clientSecretSha256"] == expected
    assert creds["client_secret"].encode() not in district.state_file.read_bytes()


def test_update_and_sensitive_version_move(district: District) -> None:
    setup_two(district)
    assert district.run("apply", "--auto-approve", "--no-test").exit_code == 0
    district.write("parchment", outgoing_yaml("parchment", district.mount, port=8443))
    district.put_vendor_secret("parchment", password="pw-2")
    plan = district.run("plan", "--detailed-exitcode")
    assert plan.exit_code == 2
    assert "~ outgoing/parchment" in plan.stdout
    assert "uploadPort: 443 -> 8443" in plan.stdout
    assert (
        f"password: (sensitive) {district.mount}/erelease/parchment#password v1 -> v2"
        in plan.stdout
    )
    assert "pw-2" not in plan.stdout
    data = district.json("plan")
    [change] = [c for c in data["changes"] if c["action"] != "noop"]
    assert change["changed_fields"] == ["consumerSecret", "password", "uploadPort"]
    assert change["after"]["password"] == {
        "ref": f"{district.mount}/erelease/parchment#password",
        "version": 2,
    }


def test_apply_without_terminal_or_approval_refuses(district: District) -> None:
    setup_two(district)
    result = district.run("apply")
    assert result.exit_code == 1
    assert "--auto-approve" in result.stderr
    assert (
        not district.state_file.exists() or district.rows("select count(*) from history")[0][0] == 0
    )


def test_an_unchanged_config_applies_without_approval(district: District) -> None:
    """Nothing to approve: a no-op apply in a pipeline succeeds, as it does on a terminal."""
    setup_two(district)
    assert district.run("apply", "--auto-approve", "--no-test").exit_code == 0
    result = district.run("apply")
    assert result.exit_code == 0, result.stderr
    assert "No changes" in result.stdout
    assert district.rows("select count(*) from history")[0][0] == 1


def test_saved_plan_applies_and_is_then_stale(district: District, tmp_path: Path) -> None:
    setup_two(district)
    plan_file = tmp_path / "plan.json"
    assert district.run("plan", "--out", str(plan_file)).exit_code == 0
    saved = json.loads(plan_file.read_text())
    assert saved["format_version"] == "1" and saved["has_changes"] is True
    assert district.run("apply", str(plan_file), "--no-test").exit_code == 0
    replay = district.run("apply", str(plan_file), "--no-test")
    assert replay.exit_code == 5, replay.output + replay.stderr
    assert "serial moved from 0 to 1" in replay.stderr


def _saved(district: District, tmp_path: Path) -> Path:
    plan_file = tmp_path / "plan.json"
    assert district.run("plan", "--out", str(plan_file)).exit_code == 0
    return plan_file


def test_stale_when_config_changes(district: District, tmp_path: Path) -> None:
    setup_two(district)
    plan_file = _saved(district, tmp_path)
    district.write("parchment", outgoing_yaml("parchment", district.mount, port=444))
    result = district.run("apply", str(plan_file), "--no-test")
    assert result.exit_code == 5 and "configuration changed" in result.stderr


def test_stale_when_vault_version_moves(district: District, tmp_path: Path) -> None:
    setup_two(district)
    plan_file = _saved(district, tmp_path)
    district.put_vendor_secret("parchment", password="pw-2")
    result = district.run("apply", str(plan_file), "--no-test")
    assert result.exit_code == 5
    assert f"{district.mount}/erelease/parchment moved from v1 to v2" in result.stderr


def test_stale_when_lineage_differs(district: District, tmp_path: Path) -> None:
    setup_two(district)
    assert district.run("apply", "--auto-approve", "--no-test").exit_code == 0
    district.write("parchment", outgoing_yaml("parchment", district.mount, port=444))
    plan_file = _saved(district, tmp_path)
    other = tmp_path / "other.db"
    # Same config, a different registry (a new lineage): the plan must not apply there.
    first = district.run("--state", f"sqlite:///{other}", "apply", "--auto-approve", "--no-test")
    assert first.exit_code == 0, first.output + first.stderr
    result = district.run("--state", f"sqlite:///{other}", "apply", str(plan_file), "--no-test")
    assert result.exit_code == 5 and "lineage" in result.stderr


def test_rotate_by_flag_and_by_rotation(district: District) -> None:
    setup_two(district)
    assert district.run("apply", "--auto-approve", "--no-test").exit_code == 0
    first = district.vault_data("erelease/incoming/cfnc")
    plan = district.run("plan", "--rotate", "cfnc")
    assert "± incoming/cfnc" in plan.stdout and "--rotate" in plan.stdout
    assert district.run("apply", "--auto-approve", "--no-test", "--rotate", "cfnc").exit_code == 0
    second = district.vault_data("erelease/incoming/cfnc")
    assert first and second
    assert second["client_id"] == first["client_id"]
    assert second["client_secret"] != first["client_secret"]

    district.write("cfnc", incoming_yaml("cfnc", district.mount, rotation=1))
    plan = district.run("plan")
    assert "rotation 0 -> 1" in plan.stdout
    assert district.run("apply", "--auto-approve", "--no-test").exit_code == 0
    third = district.vault_data("erelease/incoming/cfnc")
    assert third and third["client_secret"] != second["client_secret"]
    assert district.run("plan", "--detailed-exitcode").exit_code == 0


def test_vault_change_outside_erelease_is_rotated(district: District) -> None:
    setup_two(district)
    assert district.run("apply", "--auto-approve", "--no-test").exit_code == 0
    district.bao.kv_put(
        district.mount, "erelease/incoming/cfnc", {"client_id": "x", "client_secret": "y"}
    )
    plan = district.run("plan")
    assert "± incoming/cfnc" in plan.stdout and "outside erelease" in plan.stdout


def test_delete_needs_allow_delete(district: District) -> None:
    setup_two(district)
    assert district.run("apply", "--auto-approve", "--no-test").exit_code == 0
    client_id = district.json("show", "cfnc")["outputs"]["clientId"]
    district.remove("cfnc")
    plan = district.run("plan")
    assert "- incoming/cfnc" in plan.stdout and f"(revokes client {client_id})" in plan.stdout
    refused = district.run("apply", "--auto-approve", "--no-test")
    assert refused.exit_code == 1 and "--allow-delete" in refused.stderr
    assert district.vault_data("erelease/incoming/cfnc") is not None
    assert district.rows("select count(*) from history")[0][0] == 1

    done = district.run("apply", "--auto-approve", "--no-test", "--allow-delete")
    assert done.exit_code == 0, done.output + done.stderr
    assert district.vault_data("erelease/incoming/cfnc") is None
    names = [c["name"] for c in district.json("show")["connections"]]
    assert names == ["parchment"]


def test_protected_connection_is_never_deleted(district: District) -> None:
    district.put_vendor_secret("parchment")
    district.write("parchment", outgoing_yaml("parchment", district.mount, protect=True))
    assert district.run("apply", "--auto-approve", "--no-test").exit_code == 0
    district.remove("parchment")
    refused = district.run("apply", "--auto-approve", "--no-test", "--allow-delete")
    assert refused.exit_code == 1 and "protected" in refused.stderr
    # Unprotect in one apply, delete in the next.
    district.write("parchment", outgoing_yaml("parchment", district.mount, protect=False))
    assert district.run("apply", "--auto-approve", "--no-test").exit_code == 0
    district.remove("parchment")
    assert district.run("apply", "--auto-approve", "--no-test", "--allow-delete").exit_code == 0


def test_rename_is_delete_plus_create(district: District) -> None:
    setup_two(district)
    assert district.run("apply", "--auto-approve", "--no-test").exit_code == 0
    district.remove("parchment")
    district.put_vendor_secret("parchment2")
    district.write("parchment2", outgoing_yaml("parchment2", district.mount))
    data = district.json("plan")
    actions = {c["address"]: c["action"] for c in data["changes"]}
    assert actions["outgoing/parchment"] == "delete"
    assert actions["outgoing/parchment2"] == "create"


@pytest.mark.parametrize("new_name", ["acfnc", "zcfnc"])  # sorts before / after the old
def test_rename_that_keeps_the_credentials_path(district: District, new_name: str) -> None:
    """The create mints over the deleted connection's secret; the delete leaves the path."""
    path = "erelease/incoming/cfnc"
    district.write("cfnc", incoming_yaml("cfnc", district.mount))
    assert district.run("apply", "--auto-approve", "--no-test").exit_code == 0
    before = district.vault_data(path)
    assert before is not None
    district.remove("cfnc")
    district.write(
        new_name,
        incoming_yaml(new_name, district.mount).replace(f"erelease/incoming/{new_name}", path),
    )
    renamed = district.run("apply", "--auto-approve", "--no-test", "--allow-delete")
    assert renamed.exit_code == 0, renamed.stderr
    after = district.vault_data(path)
    assert after is not None and after["client_secret"] != before["client_secret"]
    [(name, outputs)] = district.rows("select name, outputs from connections")
    assert name == new_name
    stored = json.loads(outputs)
    assert stored["clientId"] == after["client_id"]
    assert (
        stored["clientSecretSha256"] == hashlib.sha256(after["client_secret"].encode()).hexdigest()
    )
    assert district.run("plan", "--detailed-exitcode").exit_code == 0


def test_moving_credentials_onto_a_foreign_secret_is_refused(district: District) -> None:
    """A typo in `credentials` must never overwrite a vendor's secret."""
    district.put_vendor_secret("parchment", password="vendor-pw")
    district.write("cfnc", incoming_yaml("cfnc", district.mount))
    assert district.run("apply", "--auto-approve", "--no-test").exit_code == 0
    before = district.rows("select serial from stacks")
    district.write(
        "cfnc",
        incoming_yaml("cfnc", district.mount).replace(
            "erelease/incoming/cfnc", "erelease/parchment"
        ),
    )
    moved = district.run("apply", "--auto-approve", "--no-test")
    assert moved.exit_code == 1
    assert "already holds a secret that erelease did not write" in moved.stderr
    assert district.vault_data("erelease/parchment") == {
        "password": "vendor-pw",
        "consumer_secret": "cs-1",
    }
    assert district.rows("select serial from stacks") == before
    assert district.vault_data("erelease/incoming/cfnc") is not None  # still the live one


def test_history_and_state_list(district: District) -> None:
    setup_two(district)
    assert district.run("apply", "--auto-approve", "--no-test").exit_code == 0
    history = json.loads(district.run("state", "history", "--format", "json").stdout)
    assert [h["serial"] for h in history] == [1]
    assert history[0]["summary"]["create"] == 2
    listed = district.run("state", "list")
    assert "serial 1" in listed.stdout and "incoming/cfnc" in listed.stdout


def test_lock_contention_names_the_holder(district: District) -> None:
    setup_two(district)
    assert district.run("apply", "--auto-approve", "--no-test").exit_code == 0
    with open_store(f"sqlite:///{district.state_file}") as store:
        lock = store.acquire_lock(stack="district-42", operation="apply")
        try:
            district.write("parchment", outgoing_yaml("parchment", district.mount, port=444))
            result = district.run("apply", "--auto-approve", "--no-test")
            assert result.exit_code == 4, result.output + result.stderr
            assert lock.info.lock_id in result.stderr and "apply" in result.stderr
            unlock = district.run("state", "unlock", lock.info.lock_id)
            assert unlock.exit_code == 0
        finally:
            lock.release()
    assert district.run("apply", "--auto-approve", "--no-test").exit_code == 0


def test_invalid_config_is_one_clear_error(district: District) -> None:
    district.write(
        "bad", "apiVersion: erelease/v1\nkind: OutgoingConnection\nmetadata: {name: Bad_Name}\n"
    )
    result = district.run("plan")
    assert result.exit_code == 1
    assert "Traceback" not in result.output + result.stderr
    assert "bad.yaml" in result.stderr


def test_unknown_name_is_usage_error(district: District) -> None:
    setup_two(district)
    result = district.run("plan", "--target", "nosuch")
    assert result.exit_code == 64 and "nosuch" in result.stderr


def test_migrate_to_a_relative_sqlite_path_lands_in_the_config_dir(
    district: District, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_two(district)
    assert district.run("apply", "--auto-approve", "--no-test").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    moved = district.run("state", "migrate", "--to", "sqlite:///moved.db")
    assert moved.exit_code == 0, moved.stderr
    assert (district.path / "moved.db").is_file()
    assert not (elsewhere / "moved.db").exists()


def test_plan_and_apply_show_config_warnings_on_stderr(district: District) -> None:
    district.put_vendor_secret("legacy")
    server = "http://legacy.vendor.example"
    text = outgoing_yaml("legacy", district.mount, port=80, server=server, insecure=True)
    district.write("legacy", text)
    plan = district.run("plan", "--format", "json")
    assert plan.exit_code == 0, plan.stderr
    assert json.loads(plan.stdout)["summary"]["create"] == 1  # stdout stays one document
    assert "legacy.yaml:8:15: warning: spec.authServer: uses http://" in plan.stderr
    applied = district.run("apply", "--auto-approve", "--no-test")
    assert applied.exit_code == 0, applied.stderr
    assert "warning: spec.uploadServer: uses http://" in applied.stderr
