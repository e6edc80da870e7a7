"""Automatic retries: a failed attempt runs again as a new build target, before the build
sees the failure; every attempt keeps its own records."""

from datetime import timedelta

import pytest
from django.utils import timezone

from builds import engine
from builds.models import BuildTarget, StatusEvent
from tests.engine.conftest import waiting_step

pytestmark = pytest.mark.django_db


def retrying(key: str, limit: int = 2, on=("failed", "lost", "timeout"), **fields) -> dict:
    config = {"retry": {"limit": limit, "on": list(on)}, **fields.pop("config", {})}
    return waiting_step(key, config=config, **fields)


def attempts(driver, key: str) -> list[BuildTarget]:
    return list(
        BuildTarget.objects.filter(build=driver.build, step_key=key).order_by("step_attempt")
    )


def test_a_failed_attempt_runs_again_as_a_new_target_and_the_build_keeps_building(start):
    driver = start([retrying("ci", limit=2)])
    first = driver.target("ci")
    driver.run("ci")
    driver.send("ci", "fail")
    driver.update()
    assert driver.refresh().status == "building"
    first.refresh_from_db()
    assert (first.status, first.failure, first.superseded_by) == ("failed", "failed", "retry")
    second = driver.target("ci")
    assert (second.step_attempt, second.retries, second.status) == (2, 1, "pending")
    assert second.phid != first.phid
    assert second.attempts_allowed == 3
    event = StatusEvent.objects.get(target=second, to_status="pending")
    assert event.detail == "attempt 2 of 3: attempt 1 failed (failed)"


def test_a_step_that_fails_twice_passes_on_its_third_attempt(start):
    driver = start([retrying("ci", limit=2), waiting_step("after", depends_on=["ci"])])
    for _ in range(2):
        driver.run("ci", error="flaky")
        driver.update()
    driver.run("ci")
    driver.send("ci", "pass")
    driver.update()
    assert [t.status for t in attempts(driver, "ci")] == ["failed", "failed", "passed"]
    assert driver.target("after").status == "pending"
    assert driver.refresh().status == "building"


def test_the_build_fails_once_the_retries_are_spent(start):
    driver = start([retrying("ci", limit=1)])
    driver.run("ci", error="broken")
    driver.update()
    driver.run("ci", error="still broken")
    driver.update()
    assert [t.step_attempt for t in attempts(driver, "ci")] == [1, 2]
    assert driver.refresh().status == "failed"


def test_a_failure_the_step_does_not_retry_on_fails_the_build(start):
    driver = start([retrying("ci", limit=3, on=["timeout"])])
    driver.run("ci", error="broken")
    driver.update()
    assert len(attempts(driver, "ci")) == 1
    assert driver.refresh().status == "failed"


def test_a_wait_timeout_is_retried_as_timeout(start):
    driver = start([retrying("ci", limit=1, on=["timeout"], config={"wait_timeout": 60})])
    driver.run("ci")
    BuildTarget.objects.filter(pk=driver.target("ci").pk).update(
        wait_deadline=timezone.now() - timedelta(seconds=1)
    )
    driver.update()
    first, second = attempts(driver, "ci")
    assert (first.status, first.failure) == ("failed", "timeout")
    assert second.status == "pending"
    assert driver.refresh().status == "building"


def test_a_lost_worker_ends_the_attempt_and_the_step_runs_again(start):
    driver = start([retrying("ci", limit=1, on=["lost"])])
    driver.claim("ci")
    BuildTarget.objects.filter(pk=driver.target("ci").pk).update(
        lease_expires=timezone.now() - timedelta(seconds=1)
    )
    assert driver.claim("ci") is None  # a redelivered run_target finds the lease lapsed
    driver.update()
    first, second = attempts(driver, "ci")
    assert (first.status, first.failure) == ("failed", "lost")
    assert (second.status, second.step_attempt) == ("pending", 2)


def test_a_verdict_to_a_superseded_attempt_is_refused_saying_so(start):
    driver = start([retrying("ci", limit=1)])
    first = driver.target("ci")
    driver.run("ci", error="flaky")
    driver.update()
    with pytest.raises(engine.MessageRefused, match="superseded by a newer attempt"):
        engine.receive_message(first.phid, "pass")


def test_each_attempt_keeps_its_own_log(start):
    driver = start([retrying("ci", limit=1)])
    driver.run("ci", error="first try broke")
    driver.update()
    driver.run("ci", error="second try broke")
    first, second = attempts(driver, "ci")
    assert [log.text for log in first.logs.all()] == ["first try broke"]
    assert [log.text for log in second.logs.all()] == ["second try broke"]


def test_a_replayed_pass_adds_no_second_retry(start):
    driver = start([retrying("ci", limit=3)])
    driver.run("ci", error="flaky")
    driver.update()
    driver.update()
    assert len(attempts(driver, "ci")) == 2


def test_no_retry_is_made_when_another_step_fails_the_build_in_the_same_pass(start):
    driver = start([retrying("ci", limit=2), waiting_step("lint")])
    driver.run("ci")
    driver.run("lint")
    driver.send("ci", "fail")
    driver.send("lint", "fail")
    driver.update()
    assert [(t.status, t.superseded_by) for t in attempts(driver, "ci")] == [("failed", "")]
    assert driver.refresh().status == "failed"
