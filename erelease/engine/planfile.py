"""Plans as JSON (SPEC §3.2) and saved plans that refuse to be replayed stale.

A saved plan (``plan --out``) is the same JSON that ``--format json`` prints,
plus what it was bound to: the Vault versions it saw and the options it was
made with. ``apply PLANFILE`` re-plans under the lock and refuses (exit 5) if
the lineage, serial, config digest, any Vault version or the set of changes
moved — the saved file is a promise about reality, not a script to replay.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from erelease.engine.plan import Plan
from erelease.errors import PlanError, StalePlan

__all__ = ["FORMAT_VERSION", "SavedPlan", "check_current", "load_plan", "plan_to_dict", "save_plan"]

FORMAT_VERSION = "1"
_MAX_PLAN_BYTES = 256 * 1024 * 1024


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The JSON object of SPEC §3.2. Secret fields appear only as reference + version."""
    return {
        "format_version": FORMAT_VERSION,
        "stack": plan.stack,
        "lineage": plan.lineage,
        "serial": plan.serial,
        "config_digest": plan.config_digest,
        "has_changes": plan.has_changes,
        "summary": plan.summary,
        "changes": [
            {
                "address": c.address,
                "kind": c.kind,
                "name": c.name,
                "action": c.action,
                "changed_fields": c.changed_fields,
                "before": c.before,
                "after": c.after,
                "reasons": c.reasons,
            }
            for c in plan.changes
        ],
        "vault_versions": plan.vault_versions,
        "options": {
            "targets": list(plan.targets),
            "rotate": list(plan.rotate),
            "allow_delete": plan.allow_delete,
        },
    }


def _changes_digest(changes: Any) -> str:
    """A digest of what the changes would do, as their JSON says it.

    Binding a saved plan to the config digest and the Vault versions is not
    enough: settings that come from the environment (``ERELEASE_INCOMING_BASE_URL``
    …) change what apply writes without touching a file.
    """
    kept = [
        {k: c.get(k) for k in ("address", "action", "changed_fields", "before", "after")}
        for c in changes
    ]
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def save_plan(plan: Plan, path: Path) -> None:
    """Write the plan atomically (temp file + rename), readable by the owner only."""
    data = json.dumps(plan_to_dict(plan), indent=2, sort_keys=False) + "\n"
    path = path.resolve()
    try:
        fd, tmp = tempfile.mkstemp(prefix=".plan-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise PlanError(f"cannot write the plan file {path}: {exc.strerror}") from exc


@dataclass(frozen=True)
class SavedPlan:
    """What a saved plan promised."""

    path: Path
    stack: str
    lineage: str | None
    serial: int
    config_digest: str
    vault_versions: dict[str, int | None]
    actions: dict[str, str]
    targets: tuple[str, ...]
    rotate: tuple[str, ...]
    allow_delete: bool = False
    changes_digest: str = ""


def load_plan(path: Path) -> SavedPlan:
    """Read a plan file written by ``plan --out``; PlanError if it is not one."""
    not_a_plan = f"{path} is not a plan file written by 'erelease plan --out'"
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would hang, /dev/zero never end
            raise PlanError(not_a_plan + " (not a regular file)")
        with path.open("rb") as fh:
            data = fh.read(_MAX_PLAN_BYTES + 1)
        if len(data) > _MAX_PLAN_BYTES:
            raise PlanError(f"{path} is too large to be a plan file")
        raw = json.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise PlanError(f"plan file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        # ValueError covers json's errors; RecursionError: hostile nesting
        raise PlanError(not_a_plan) from None
    if not isinstance(raw, dict) or raw.get("format_version") != FORMAT_VERSION:
        raise PlanError(
            f"{path} is not a plan file of format version {FORMAT_VERSION} "
            "(write it with 'erelease plan --out')"
        )
    try:
        options = raw.get("options") or {}
        serial = raw["serial"]
        lineage = raw["lineage"]
        allow_delete = options.get("allow_delete", False)
        # what this process wrote, exactly: a hand-edited type is damage, not a value
        if type(serial) is not int or serial < 0 or not isinstance(allow_delete, bool):
            raise TypeError("serial or allow_delete")
        if lineage is not None and not isinstance(lineage, str):
            raise TypeError("lineage")
        return SavedPlan(
            path=path,
            stack=str(raw["stack"]),
            lineage=lineage,
            serial=serial,
            config_digest=str(raw["config_digest"]),
            vault_versions=dict(raw.get("vault_versions") or {}),
            actions={str(c["address"]): str(c["action"]) for c in raw["changes"]},
            targets=_names(options.get("targets")),
            rotate=_names(options.get("rotate")),
            allow_delete=allow_delete,
            changes_digest=_changes_digest(raw["changes"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError):
        raise PlanError(f"{path} is a damaged plan file; run 'erelease plan --out' again") from None


def _names(value: Any) -> tuple[str, ...]:
    """``options.targets`` / ``options.rotate``: a list of addresses, nothing else."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("a list of names")
    return tuple(value)


def check_current(saved: SavedPlan, fresh: Plan) -> None:
    """Raise StalePlan (exit 5) naming everything that moved since the plan was saved."""
    moved: list[str] = []
    if saved.stack != fresh.stack:
        moved.append(f"stack is {fresh.stack!r}, the plan is for {saved.stack!r}")
    if saved.lineage != fresh.lineage:
        moved.append("the state lineage differs (another registry or a recreated stack)")
    if saved.serial != fresh.serial:
        moved.append(f"the state serial moved from {saved.serial} to {fresh.serial}")
    if saved.config_digest != fresh.config_digest:
        moved.append("the configuration changed (config digest differs)")
    for location in sorted(set(saved.vault_versions) | set(fresh.vault_versions)):
        old = saved.vault_versions.get(location)
        new = fresh.vault_versions.get(location)
        if old is None and new is not None:
            moved.append(f"Vault secret {location} was written (now v{new})")
        elif new is None and old is not None:
            moved.append(f"Vault secret {location} is gone (it was v{old})")
        elif old != new:
            moved.append(f"Vault secret {location} moved from v{old} to v{new}")
    fresh_actions = {c.address: c.action for c in fresh.changes}
    if not moved and fresh_actions != saved.actions:
        moved.append("the changes to make differ from the saved plan")
    elif not moved and saved.changes_digest != _changes_digest(plan_to_dict(fresh)["changes"]):
        moved.append(
            "the changes to make differ from the saved plan (a setting such as "
            "incoming.baseUrl or an ERELEASE_* variable is not the same)"
        )
    if moved:
        raise StalePlan(
            f"the saved plan {saved.path} is stale: " + "; ".join(moved) + ". "
            "Run 'erelease plan --out' again"
        )
