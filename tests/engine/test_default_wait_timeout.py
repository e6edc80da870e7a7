"""``HARBOR_DEFAULT_WAIT_TIMEOUT``: the wait limit of steps that set no ``wait_timeout``, and
the ``stuck_after`` option's checks at import."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from builds.models import StatusEvent
from builds.plans import PlanError, import_plan
from tests.engine.conftest import waiting_step
from tests.workers import ROOT

pytestmark = pytest.mark.django_db


def test_a_step_without_wait_timeout_gets_the_default_deadline(start, settings):
    settings.HARBOR_DEFAULT_WAIT_TIMEOUT = 600
    driver = start([waiting_step("ci")])
    driver.run("ci")
    deadline = driver.target("ci").wait_deadline
    assert deadline is not None
    assert abs((deadline - timezone.now()) - timedelta(seconds=600)) < timedelta(seconds=30)


def test_an_approval_waits_for_its_person_without_the_default_deadline(start, settings):
    settings.HARBOR_DEFAULT_WAIT_TIMEOUT = 600
    driver = start([waiting_step("deploy", step_type="approval")])
    driver.run("deploy")
    assert driver.target("deploy").status == "waiting"
    assert driver.target("deploy").wait_deadline is None


def test_a_steps_own_wait_timeout_wins_over_the_default(start, settings):
    settings.HARBOR_DEFAULT_WAIT_TIMEOUT = 600
    driver = start([waiting_step("ci", config={"wait_timeout": 5})])
    driver.run("ci")
    left = driver.target("ci").wait_deadline - timezone.now()
    assert left <= timedelta(seconds=5)


def test_a_wait_past_the_default_deadline_fails_saying_why(start, settings):
    settings.HARBOR_DEFAULT_WAIT_TIMEOUT = 600
    driver = start([waiting_step("ci")])
    driver.run("ci")
    target = driver.target("ci")
    type(target).objects.filter(pk=target.pk).update(wait_deadline=timezone.now())
    driver.update()
    assert driver.target("ci").status == "failed"
    event = StatusEvent.objects.get(target=target, to_status="failed")
    assert event.cause == "timeout" and "HARBOR_DEFAULT_WAIT_TIMEOUT" in event.detail


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan"])
def test_a_bad_default_wait_timeout_stops_harbor_at_start(value):
    code = "import django; django.setup()"
    env = {"HARBOR_DEFAULT_WAIT_TIMEOUT": value, "DJANGO_SETTINGS_MODULE": "harbor.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert f"HARBOR_DEFAULT_WAIT_TIMEOUT must be a number of seconds above 0, not {value!r}" in (
        result.stderr
    )


@pytest.mark.parametrize("value", [0, -1, "soon", True])
def test_a_bad_stuck_after_is_refused_at_import(value):
    plan = {"name": "p", "steps": [{"key": "ci", "type": "sleep", "stuck_after": value}]}
    with pytest.raises(PlanError) as refused:
        import_plan(plan)
    assert any(
        "stuck_after must be a number of seconds above 0" in p for p in refused.value.problems
    )


def test_stuck_after_is_kept_in_the_steps_config():
    plan = {"name": "p", "steps": [{"key": "ci", "type": "sleep", "stuck_after": 90}]}
    assert import_plan(plan).steps.get().config["stuck_after"] == 90
