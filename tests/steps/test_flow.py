"""Flow control and testing steps: wait-for-previous-builds, abort-older-builds, sleep, fail."""

import time

import pytest

from builds.models import Build, Buildable, BuildMessage
from tests.conftest import make_plan
from tests.steps.conftest import log_text, make_target, run_step
from workers.steps import StepAborted, StepContext, StepFailed, StepYield

pytestmark = pytest.mark.django_db

REPO = "https://example.com/shop.git"


def buildable_at(commit: str, ref: str = "main", repository: str = REPO) -> Buildable:
    return Buildable.objects.create(repository=repository, ref=ref, commit=commit * 40)


def build_of(plan, buildable, status=Build.Status.BUILDING) -> Build:
    return Build.objects.create(plan=plan, buildable=buildable, status=status, generation=1)


@pytest.fixture
def plan():
    return make_plan("flow", [{"key": "only", "step_type": "wait-for-previous-builds"}])


def test_it_yields_while_earlier_buildables_builds_of_the_plan_run(plan):
    earlier = build_of(plan, buildable_at("1"))
    target = make_target(
        "wait-for-previous-builds", {"poll_seconds": 3}, buildable_at("2"), plan=plan
    )
    with pytest.raises(StepYield) as first:
        run_step(target)
    with pytest.raises(StepYield):
        run_step(target)
    assert first.value.seconds == 3
    assert log_text(target, "wait").count(f"Waiting for earlier build(s) {earlier.pk}.") == 1
    Build.objects.filter(pk=earlier.pk).update(status=Build.Status.PASSED)
    run_step(target)
    assert "No earlier build of this plan and ref is running." in log_text(target, "wait")


def test_it_does_not_wait_for_other_plans_refs_repositories_or_later_buildables(plan):
    other_plan = make_plan("other", [{"key": "x"}])
    build_of(other_plan, buildable_at("1"))
    build_of(plan, buildable_at("2", ref="release"))
    build_of(plan, buildable_at("3", repository="https://example.com/other.git"))
    build_of(plan, buildable_at("4", ref="main"), status=Build.Status.FAILED)
    build_of(plan, buildable_at("5", ref="main"), status=Build.Status.PAUSED)
    target = make_target("wait-for-previous-builds", {}, buildable_at("6"), plan=plan)
    build_of(plan, buildable_at("7"))  # later buildable
    run_step(target)  # does not yield
    assert "No earlier build" in log_text(target, "wait")


def test_it_sends_abort_to_older_incomplete_builds_of_the_plan_on_the_same_ref(plan):
    older_running = build_of(plan, buildable_at("1"))
    older_paused = build_of(plan, buildable_at("2"), status=Build.Status.PAUSED)
    older_done = build_of(plan, buildable_at("3"), status=Build.Status.PASSED)
    other_ref = build_of(plan, buildable_at("4", ref="release"))
    other_plan = build_of(make_plan("other", [{"key": "x"}]), buildable_at("5"))
    target = make_target("abort-older-builds", {}, buildable_at("6"), plan=plan)
    newer = build_of(plan, buildable_at("7"))
    run_step(target)
    aborted = set(BuildMessage.objects.filter(type="abort").values_list("build_id", flat=True))
    assert aborted == {older_running.pk, older_paused.pk}
    untouched = {older_done.pk, other_ref.pk, other_plan.pk, newer.pk, target.build_id}
    assert not aborted & untouched
    assert f"Build {older_running.pk}: abort sent" in log_text(target, "abort")


def test_running_abort_older_builds_again_sends_each_abort_once(plan):
    build_of(plan, buildable_at("1"))
    target = make_target("abort-older-builds", {}, buildable_at("2"), plan=plan)
    run_step(target)
    run_step(target)
    assert BuildMessage.objects.filter(type="abort").count() == 1
    assert "abort already sent" in log_text(target, "abort")


def test_sleep_sleeps_for_its_seconds(buildable):
    target = make_target("sleep", {"seconds": 0.3}, buildable)
    began = time.monotonic()
    run_step(target)
    assert time.monotonic() - began >= 0.3


def test_sleep_stops_early_when_the_target_is_aborted(buildable):
    target = make_target("sleep", {"seconds": 60}, buildable)
    context = StepContext(target)
    context.stop_event.set()
    with pytest.raises(StepAborted):
        run_step(target, context)


def test_fail_fails_with_its_message(buildable):
    target = make_target("fail", {"message": "not today"}, buildable)
    with pytest.raises(StepFailed, match="not today"):
        run_step(target)
