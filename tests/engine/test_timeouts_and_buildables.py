"""Wait timeouts (Beyond Harbormaster) and the buildable's aggregate status
(docs/harbormaster.md §1.8)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from builds import engine
from builds.models import BuildTarget, StatusEvent
from tests.engine.conftest import waiting_step

pytestmark = pytest.mark.django_db


def expire(target: BuildTarget) -> None:
    BuildTarget.objects.filter(pk=target.pk).update(
        wait_deadline=timezone.now() - timedelta(seconds=1)
    )


@pytest.mark.parametrize(("on_timeout", "outcome"), [("fail", "failed"), ("pass", "passed")])
def test_a_wait_that_times_out_settles_with_the_chosen_outcome(start, on_timeout, outcome):
    step = waiting_step("ci", config={"wait_timeout": 60, "on_timeout": on_timeout})
    driver = start([step])
    driver.run("ci")
    target = driver.target("ci")
    assert target.wait_deadline is not None
    assert engine.builds_with_expired_waits() == []
    expire(target)
    assert engine.builds_with_expired_waits() == [driver.build.pk]
    driver.update()
    assert driver.target("ci").status == outcome
    assert driver.refresh().status == outcome
    event = StatusEvent.objects.get(target=target, to_status=outcome)
    assert event.cause == "timeout" and "timed out" in event.detail


def test_a_message_received_before_the_timeout_pass_wins(start):
    driver = start([waiting_step("ci", config={"wait_timeout": 60})])
    driver.run("ci")
    driver.send("ci", "pass")
    expire(driver.target("ci"))
    driver.update()
    assert driver.target("ci").status == "passed"


def test_a_step_without_wait_timeout_waits_for_ever(start):
    driver = start([waiting_step("ci")])
    driver.run("ci")
    assert driver.target("ci").wait_deadline is None


@pytest.mark.parametrize(
    ("builds", "expected"),
    [
        ([], "passed"),
        ([("passed", "always"), ("passed", "always")], "passed"),
        ([("passed", "always"), ("building", "always")], "building"),
        ([("failed", "always"), ("building", "always")], "failed"),
        ([("aborted", "always")], "failed"),
        ([("failed", "never"), ("passed", "always")], "passed"),
        ([("failed", "building"), ("passed", "always")], "passed"),
        ([("building", "building"), ("passed", "always")], "building"),
    ],
)
def test_the_buildable_status_aggregates_the_builds_that_affect_it(builds, expected):
    assert engine.aggregate_status(builds) == expected


def test_starting_a_build_moves_the_buildable_to_building(start):
    driver = start([waiting_step("ci")])
    driver.build.buildable.refresh_from_db()
    assert driver.build.buildable.status == "building"
