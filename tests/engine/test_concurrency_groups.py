"""Concurrency groups in one process: admission first in, first out, slots freed by
completion and abort, queued targets never claimed, and the plan checks."""

from datetime import timedelta

import pytest
from django.utils import timezone

from builds import engine
from builds.engine import concurrency
from builds.models import BuildTarget
from builds.plans import PlanError, import_plan
from tests.engine.conftest import Driver, waiting_step

pytestmark = pytest.mark.django_db

GROUP = {"group": "deploy-${buildable.ref}", "limit": 1}


def deploy(limit: int = 1) -> dict:
    return waiting_step("deploy", config={"concurrency": {**GROUP, "limit": limit}})


def test_a_second_build_stays_queued_until_the_first_frees_the_slot(start):
    first = start([deploy()])
    second = start([deploy()])

    a, b = first.target("deploy"), second.target("deploy")
    assert a.concurrency_group == b.concurrency_group == "deploy-main"
    assert a.date_admitted is not None and b.date_admitted is None
    assert second.claim("deploy") is None  # a worker will not run a queued target
    assert BuildTarget.objects.get(pk=b.pk).status == "pending"

    first.run("deploy")
    first.send("deploy", "pass")
    first.update()
    assert first.refresh().status == "passed"
    second.update()
    assert second.target("deploy").date_admitted is not None
    assert second.claim("deploy") is not None


def test_queued_targets_are_admitted_first_in_first_out(start):
    first, second, third = start([deploy()]), start([deploy()]), start([deploy()])
    assert concurrency.places_ahead([second.target("deploy"), third.target("deploy")]) == {
        second.target("deploy").pk: 0,
        third.target("deploy").pk: 1,
    }
    first.command("abort")
    first.update()
    third.update()  # the later build's pass first: its target is not at the head
    assert third.target("deploy").date_admitted is None
    second.update()
    assert second.target("deploy").date_admitted is not None


def test_places_ahead_costs_one_query_for_one_queued_target_as_for_several(
    start, django_assert_num_queries
):
    drivers = [start([deploy()]) for _ in range(4)]
    queued = [d.target("deploy") for d in drivers[1:]]
    with django_assert_num_queries(1):
        one = concurrency.places_ahead(queued[:1])
    with django_assert_num_queries(1):
        several = concurrency.places_ahead(queued)
    assert one == {queued[0].pk: 0}
    assert several == {target.pk: place for place, target in enumerate(queued)}


def test_a_limit_of_two_admits_two(start):
    drivers = [start([deploy(limit=2)]) for _ in range(3)]
    admitted = [d.target("deploy").date_admitted is not None for d in drivers]
    assert admitted == [True, True, False]


def test_a_pass_that_frees_a_slot_asks_for_an_update_of_the_queue_head(
    start, django_capture_on_commit_callbacks, monkeypatch
):
    first, second = start([deploy()]), start([deploy()])
    woken = []
    monkeypatch.setattr("builds.engine.dispatch.request_update", woken.append)
    first.command("abort")
    with django_capture_on_commit_callbacks(execute=True):
        first.update()
    assert second.build.pk in woken
    woken.clear()
    with django_capture_on_commit_callbacks(execute=True):
        first.update()  # a replayed pass announces nothing again
    assert second.build.pk not in woken


def test_a_paused_build_keeps_no_place_ahead(start):
    first, second, third = start([deploy()]), start([deploy()]), start([deploy()])
    second.command("pause")
    second.update()
    first.command("abort")
    first.update()
    third.update()
    assert third.target("deploy").date_admitted is not None


def test_other_steps_of_the_build_run_while_one_is_queued(start):
    first = start([deploy()])
    second = start([deploy(), {"key": "tests", "step_type": "sleep"}])
    assert first.target("deploy").date_admitted
    assert second.claim("tests") is not None


def test_the_repair_wakes_a_queue_whose_wake_up_was_lost(start):
    first, second = start([deploy()]), start([deploy()])
    first.command("abort")
    first.update()  # its on-commit wake-up is never sent here
    lost = engine.find_lost_work(bound_seconds=-1)
    assert second.build.pk in lost.build_ids
    assert second.target("deploy").pk not in lost.target_ids


@pytest.mark.parametrize("lost", [1, 3])
def test_the_repair_counts_every_groups_slot_holders_in_one_query(
    start, lost, django_assert_num_queries
):
    """Groups whose wake-up was lost (holder aborted, queue head never woken) are found in
    two queries however many there are; a group whose slot is still held is not."""

    def pair(group: str) -> Driver:
        step = waiting_step("deploy", config={"concurrency": {"group": group, "limit": 1}})
        holder = start([step])
        start([step])
        return holder

    queued = []
    for i in range(lost):
        holder = pair(f"lost-{i}")
        holder.command("abort")
        holder.update()  # its on-commit wake-up is never sent here
        queued.append(BuildTarget.objects.get(concurrency_group=f"lost-{i}", date_admitted=None))
    pair("held")
    with django_assert_num_queries(2):  # the queues' heads, then their groups' holders
        stalled = concurrency.stalled_queues(timezone.now() + timedelta(seconds=1))
    assert stalled == [target.build_id for target in queued]


@pytest.mark.parametrize(
    ("concurrency", "problem"),
    [
        ({"group": "deploy", "limit": 0}, "concurrency.limit must be a whole number from 1"),
        ({"group": "deploy", "limit": True}, "concurrency.limit must be a whole number from 1"),
        ({"group": "deploy"}, "concurrency.limit must be a whole number from 1"),
        ({"group": "", "limit": 1}, "concurrency.group must be a group name"),
        ({"group": "d-${buildable.branch}", "limit": 1}, "unknown variable"),
        ({"group": "d-${target.id}", "limit": 1}, "must not use ${target.…}"),
        ({"group": "d", "limit": 1, "max": 2}, "unknown concurrency field(s): max"),
        ("deploy", "concurrency must be a mapping"),
    ],
)
def test_a_bad_concurrency_option_is_refused_naming_the_step(concurrency, problem):
    plan = {"name": "p", "steps": [{"key": "ship", "type": "sleep", "concurrency": concurrency}]}
    with pytest.raises(PlanError) as refused:
        import_plan(plan)
    assert any(p.startswith("step 'ship'") and problem in p for p in refused.value.problems), (
        refused.value.problems
    )


def test_a_retry_frees_the_failed_attempts_slot_and_its_new_attempt_queues_for_one(start):
    """Each attempt is a target of its own: the failed one frees its slot, and the retry
    goes through admission at the back of the queue, never running beside the group."""
    retrying = {"concurrency": GROUP, "retry": {"limit": 1, "on": ["failed"]}}
    first = start([waiting_step("deploy", config=retrying)])
    second = start([deploy()])
    failed = first.target("deploy")
    first.run("deploy")
    first.send("deploy", "fail")
    first.update()

    retry = first.target("deploy")
    assert (retry.step_attempt, retry.concurrency_group) == (2, "deploy-main")
    assert retry.date_admitted is None  # the second build was queued first
    assert first.claim("deploy") is None
    assert BuildTarget.objects.get(pk=failed.pk).slot_released
    second.update()
    assert second.target("deploy").date_admitted is not None

    second.run("deploy")
    second.send("deploy", "pass")
    second.update()
    first.update()
    assert first.target("deploy").date_admitted is not None
    assert first.claim("deploy") is not None


def test_a_rerun_attempt_of_a_grouped_step_waits_for_a_free_slot(start):
    first = start([deploy()])
    first.run("deploy")
    first.send("deploy", "pass")
    first.update()
    assert first.refresh().status == "passed"
    second = start([deploy()])  # holds the slot now
    assert second.target("deploy").date_admitted is not None

    engine.receive_message(first.build.phid, "rerun", step_key="deploy")
    first.update()
    rerun = first.target("deploy")
    assert rerun.step_attempt == 2 and rerun.date_admitted is None
    second.command("abort")
    second.update()
    first.update()
    assert first.target("deploy").date_admitted is not None
