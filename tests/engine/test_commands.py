"""Build commands, one test per cell of Harbormaster's command × build-state table
(docs/harbormaster.md §3), plus plan behaviors and restart history."""

import pytest

from builds import engine
from builds.models import Build, BuildTarget, StatusEvent
from tests.engine.conftest import waiting_step

pytestmark = pytest.mark.django_db

COMPLETE = ["passed", "failed", "aborted", "error", "deadlocked"]


def build_in_state(start, state: str, **plan_fields):
    """A build of a one-waiting-step plan brought to ``state`` (complete states are written
    directly: how a build got there does not matter to the command rules)."""
    driver = start([waiting_step("ci")], pending=state == "pending", **plan_fields)
    if state == "paused":
        driver.command("pause")
        driver.update()
    elif state in COMPLETE:
        Build.objects.filter(pk=driver.build.pk).update(status=state)
    assert driver.refresh().status == state
    return driver


EXPECTED = {
    # state: {command: (status after, generation after) or None when refused}
    "pending": {
        "restart": ("building", 1),
        "pause": ("paused", 0),
        "resume": None,
        "abort": ("aborted", 0),
    },
    "building": {
        "restart": ("building", 2),
        "pause": ("paused", 1),
        "resume": None,
        "abort": ("aborted", 1),
    },
    "paused": {
        "restart": ("building", 2),
        "pause": None,
        "resume": ("building", 1),
        "abort": ("aborted", 1),
    },
    **{
        state: {"restart": ("building", 2), "pause": None, "resume": None, "abort": None}
        for state in COMPLETE
    },
}
CELLS = [(state, command) for state, row in EXPECTED.items() for command in row]


@pytest.mark.parametrize(("state", "command"), CELLS, ids=[f"{s}-{c}" for s, c in CELLS])
def test_each_command_in_each_build_state(start, state, command):
    driver = build_in_state(start, state)
    expected = EXPECTED[state][command]
    if expected is None:
        messages = driver.build.messages.count()
        with pytest.raises(engine.MessageRefused):
            driver.command(command)
        assert driver.build.messages.count() == messages
        assert driver.refresh().status == state
        return
    driver.command(command)
    driver.update()
    build = driver.refresh()
    assert (build.status, build.generation) == expected


def test_a_plan_that_is_never_restartable_refuses_restart(start):
    driver = build_in_state(start, "failed", behaviors={"restartable": "never"})
    with pytest.raises(engine.MessageRefused, match="not restartable"):
        driver.command("restart")


@pytest.mark.parametrize(("state", "allowed"), [("failed", True), ("passed", False)])
def test_a_plan_restartable_if_failed_restarts_only_failed_builds(start, state, allowed):
    driver = build_in_state(start, state, behaviors={"restartable": "failed"})
    if allowed:
        driver.command("restart")
        driver.update()
        assert driver.refresh().generation == 2
    else:
        with pytest.raises(engine.MessageRefused):
            driver.command("restart")


def test_restart_keeps_every_older_run_and_old_targets_refuse_verdicts(start):
    driver = start([waiting_step("ci")])
    driver.run("ci")
    old = driver.target("ci")
    driver.send("ci", "fail", unit=[{"name": "t", "result": "fail"}])
    driver.update()
    driver.command("restart")
    driver.update()
    old.refresh_from_db()
    assert old.status == "failed" and old.unit_results.count() == 1
    assert old.messages.count() == 1
    new = driver.target("ci")
    assert (new.generation, new.status) == (2, "pending")
    with pytest.raises(engine.MessageRefused, match="already failed"):
        engine.receive_message(old.phid, "pass")


def test_a_verdict_to_a_waiting_target_of_an_older_run_is_refused(start):
    driver = start([waiting_step("a"), waiting_step("b")])
    driver.run("a")
    old_a = driver.target("a")
    driver.command("restart")
    driver.update()
    old_a.refresh_from_db()
    assert old_a.status == "aborted"
    driver.run("b")  # new run's target
    with pytest.raises(engine.MessageRefused):
        engine.receive_message(old_a.phid, "pass")


def test_restart_aborts_the_running_generations_unfinished_targets(start):
    driver = start([waiting_step("a"), waiting_step("b")])
    driver.run("a")
    driver.command("restart")
    driver.update()
    old = BuildTarget.objects.filter(build=driver.build, generation=1)
    assert set(old.values_list("status", flat=True)) == {"aborted"}
    assert StatusEvent.objects.filter(target__in=old, cause="command").count() == 2


def test_derived_status_shows_an_unapplied_command(start):
    driver = start([waiting_step("ci")])
    driver.command("pause")
    assert engine.derived_status(driver.refresh()) == "pausing"
    driver.update()
    assert engine.derived_status(driver.refresh()) == "paused"


def test_a_build_paused_before_its_first_pass_resumes_as_run_1(start):
    driver = build_in_state(start, "pending")
    driver.command("pause")
    driver.update()
    assert (driver.refresh().status, driver.build.generation) == ("paused", 0)
    driver.command("resume")
    driver.update()
    assert (driver.refresh().status, driver.build.generation) == ("building", 1)
    assert driver.target("ci").generation == 1


def test_a_verdict_accepted_before_an_abort_is_consumed_without_effect(start):
    driver = start([waiting_step("ci")])
    driver.claim("ci")
    early = driver.send("ci", "pass").message  # accepted while the step still runs
    driver.command("abort")
    driver.update()
    early.refresh_from_db()
    assert early.is_consumed and early.outcome == "no effect: the target was already aborted"
