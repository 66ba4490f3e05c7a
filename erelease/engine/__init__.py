"""The engine: plan, apply, test and show, over config, secrets, state and checks.

Commands call these functions with keyword arguments and render what they
return; nothing here prints.
"""

from __future__ import annotations

from erelease.engine.apply import ApplyResult, apply, make_plan
from erelease.engine.plan import ACTIONS, Change, FieldDiff, Plan, record_view
from erelease.engine.planfile import FORMAT_VERSION, load_plan, plan_to_dict, save_plan
from erelease.engine.testing import run_connection_tests
from erelease.engine.workspace import Workspace, resolve_names

__all__ = [
    "ACTIONS",
    "FORMAT_VERSION",
    "ApplyResult",
    "Change",
    "FieldDiff",
    "Plan",
    "Workspace",
    "apply",
    "load_plan",
    "make_plan",
    "plan_to_dict",
    "record_view",
    "resolve_names",
    "run_connection_tests",
    "save_plan",
]
