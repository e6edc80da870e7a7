"""The example plans of docs/reporting-from-ci.md import as they are written."""

from pathlib import Path

import pytest

from builds.plans import import_plan, load_plan_file

PLANS = sorted((Path(__file__).resolve().parents[2] / "examples" / "plans" / "ci").glob("*.yaml"))


@pytest.mark.django_db
@pytest.mark.parametrize("path", PLANS, ids=[path.stem for path in PLANS])
def test_each_ci_trigger_plan_imports_and_waits_for_a_message(path):
    plan = import_plan(load_plan_file(path))
    assert [step.wait_for_message for step in plan.steps.all()] == [True]
