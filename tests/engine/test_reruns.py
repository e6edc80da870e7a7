"""Re-running one step: it and the steps depending on it run again as new attempts; the
rest keep their results."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from builds import engine
from builds.engine import rows
from builds.engine.commands import apply_commands
from builds.models import Build, BuildMessage, BuildTarget, StatusEvent
from tests.engine.conftest import waiting_step
from tests.statements import statements_run

pytestmark = pytest.mark.django_db


def chain(driver_start):
    """build -> test -> deploy, and lint beside them."""
    return driver_start(
        [
            waiting_step("build"),
            waiting_step("test", depends_on=["build"]),
            waiting_step("deploy", depends_on=["test"]),
            waiting_step("lint"),
        ]
    )


def settle(driver, key: str, verdict: str = "pass") -> None:
    driver.run(key)
    driver.send(key, verdict)
    driver.update()


def attempts(driver, key: str) -> list[tuple[int, str, str]]:
    targets = BuildTarget.objects.filter(build=driver.build, step_key=key)
    return [(t.step_attempt, t.status, t.superseded_by) for t in targets.order_by("step_attempt")]


def rerun(driver, key: str, **kwargs):
    return engine.receive_message(driver.build.phid, "rerun", step_key=key, **kwargs)


def test_a_rerun_of_a_failed_middle_step_runs_it_and_its_dependents_again(start):
    driver = chain(start)
    settle(driver, "build")
    settle(driver, "lint")
    settle(driver, "test", "fail")
    assert driver.refresh().status == "failed"
    rerun(driver, "test")
    driver.update()
    assert driver.refresh().status == "building"
    assert attempts(driver, "test") == [(1, "failed", "rerun"), (2, "pending", "")]
    assert attempts(driver, "build") == [(1, "passed", "")]
    assert attempts(driver, "lint") == [(1, "passed", "")]
    settle(driver, "test")
    assert attempts(driver, "deploy") == [(1, "pending", "")]
    settle(driver, "deploy")
    assert driver.refresh().status == "passed"


def test_a_rerun_supersedes_the_dependents_that_had_passed(start):
    driver = chain(start)
    for key in ("build", "lint", "test", "deploy"):
        settle(driver, key)
    assert driver.refresh().status == "passed"
    message = rerun(driver, "test").message
    driver.update()
    assert attempts(driver, "test") == [(1, "passed", "rerun"), (2, "pending", "")]
    assert attempts(driver, "deploy") == [(1, "passed", "rerun")]  # waits for test again
    assert attempts(driver, "build") == [(1, "passed", "")]
    message.refresh_from_db()
    assert message.outcome == "rerun of step test applied"
    event = StatusEvent.objects.get(build=driver.build, message=message)
    assert (event.from_status, event.to_status) == ("passed", "building")
    driver.build.buildable.refresh_from_db()
    assert driver.build.buildable.status == "building"


def test_the_targets_a_failure_aborted_run_again_after_a_rerun(start):
    driver = chain(start)
    driver.run("lint")  # waiting when test fails: aborted with the build
    settle(driver, "build")
    settle(driver, "test", "fail")
    assert driver.target("lint").status == "aborted"
    rerun(driver, "test")
    driver.update()
    assert attempts(driver, "lint") == [(1, "aborted", "rerun"), (2, "pending", "")]


def test_an_unknown_step_is_refused_and_nothing_is_stored(start):
    driver = chain(start)
    settle(driver, "build")
    with pytest.raises(engine.InvalidMessage, match="has no step 'nope'; its steps are: build"):
        rerun(driver, "nope")
    assert not BuildMessage.objects.filter(type="rerun").exists()


def test_a_rerun_is_refused_while_the_step_is_still_running(start):
    driver = chain(start)
    driver.run("build")  # waiting
    with pytest.raises(engine.MessageRefused, match='step "build": it is still running'):
        rerun(driver, "build")
    assert not BuildMessage.objects.filter(type="rerun").exists()


def test_a_rerun_is_refused_while_a_dependent_is_still_running(start):
    driver = chain(start)
    settle(driver, "build")
    with pytest.raises(engine.MessageRefused, match='step "test", which depends on it,'):
        rerun(driver, "build")


def test_a_rerun_is_refused_while_the_build_is_paused(start):
    driver = chain(start)
    settle(driver, "build")
    driver.command("pause")
    driver.update()
    with pytest.raises(engine.MessageRefused, match="paused"):
        rerun(driver, "build")


def test_a_rerun_that_no_longer_applies_when_the_pass_comes_has_no_effect(start):
    driver = chain(start)
    settle(driver, "build")
    settle(driver, "lint")
    settle(driver, "test", "fail")
    driver.command("restart")
    message = rerun(driver, "test").message  # accepted: the restart is not applied yet
    driver.update()
    message.refresh_from_db()
    assert message.outcome == 'no effect: Step "test" has not run in this run yet.'
    assert driver.refresh().generation == 2
    assert not BuildTarget.objects.filter(build=driver.build, superseded_by="rerun").exists()


def test_a_replayed_pass_applies_a_rerun_once(start):
    driver = chain(start)
    settle(driver, "build")
    settle(driver, "lint")
    settle(driver, "test", "fail")
    rerun(driver, "test")
    driver.update()
    driver.update()
    assert attempts(driver, "test") == [(1, "failed", "rerun"), (2, "pending", "")]
    assert Build.objects.get(pk=driver.build.pk).status == "building"


def attempt_reads_applying_a_rerun(start, key: str) -> int:
    """How many statements read the chain's targets while a pass applies a rerun of
    ``key`` to the passed chain."""
    driver = chain(start)
    for settled in ("build", "lint", "test", "deploy"):
        settle(driver, settled)
    message = rerun(driver, key).message
    with transaction.atomic():
        build = rows.lock_build(driver.build.pk)
        with CaptureQueriesContext(connection) as captured:
            apply_commands(build, [message])
    message.refresh_from_db()
    assert message.outcome == f"rerun of step {key} applied"
    reads = [
        s
        for s in statements_run(captured)
        if s.startswith("SELECT") and 'FROM "builds_buildtarget"' in s
    ]
    return len(reads)


@pytest.mark.parametrize("key", ["lint", "build"])  # one attempt superseded, and three
def test_applying_a_rerun_reads_the_attempts_once(start, key):
    assert attempt_reads_applying_a_rerun(start, key) == 1
