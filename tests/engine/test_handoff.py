"""A finishing worker runs the build's pass itself and takes the next target
(``finish_target(queue_update=False)``, ``dispatch.taking_one_target``)."""

import threading

import pytest
from celery import current_app
from django.db import connection
from django.test import TestCase

from builds import engine, locks
from builds.engine import dispatch
from builds.models import BuildTarget, StatusEvent
from tests.interleavings.test_stale_pass import lock_waiters, wait_until_blocked_on_lock
from workers import tasks
from workers.runner import StepOutcome

pytestmark = pytest.mark.django_db


def step(key: str, *depends_on: str) -> dict:
    return {"key": key, "step_type": "sleep", "depends_on": list(depends_on)}


@pytest.fixture
def sent(monkeypatch):
    """The tasks sent to the broker, as (name, first argument)."""
    tasks: list[tuple[str, int]] = []
    monkeypatch.setattr(
        current_app, "send_task", lambda name, args, **kw: tasks.append((name, args[0]))
    )
    return tasks


def test_a_finish_for_the_workers_own_pass_queues_no_update(start, sent):
    driver = start([step("one"), step("two", "one")])
    locks.clear_update_request(driver.build.pk)
    claim = driver.claim("one")
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert engine.finish_target(claim, queue_update=False)
    assert sent == []
    driver.update()  # its callbacks, in the test's transaction, are never run
    claim = driver.claim("two")
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert engine.finish_target(claim)  # the default: the update is queued
    assert sent == [("workers.tasks.update_build", driver.build.pk)]
    locks.clear_update_request(driver.build.pk)


def test_the_pass_claims_one_created_target_for_the_worker_and_queues_the_rest(start, sent):
    driver = start([step("one"), step("two", "one"), step("three", "one")])
    driver.run("one")
    with dispatch.taking_one_target() as taken, TestCase.captureOnCommitCallbacks(execute=True):
        result = driver.update()
    assert len(taken) == 1
    claim = taken[0]
    handed = BuildTarget.objects.get(pk=claim.target.pk)
    # Claimed in the pass's transaction: building, attempt 1, under a lease, with the
    # worker's claim on the timeline like any other.
    assert (handed.status, handed.attempt, claim.attempt) == ("building", 1, 1)
    assert handed.lease_expires is not None and handed.date_started is not None
    assert list(StatusEvent.objects.filter(target=handed).values_list("to_status", "cause")) == [
        ("pending", "engine"),
        ("building", "worker"),
    ]
    others = set(
        BuildTarget.objects.filter(build=driver.build, step_key__in=["two", "three"]).values_list(
            "pk", flat=True
        )
    ) - {handed.pk}
    queued = [t for name, t in sent if name == "workers.tasks.run_target"]
    assert queued == list(result.created_target_ids) == sorted(others)
    # Only the queued one is marked as queued: the claimed one, if its worker died, is the
    # repair task's to find once its lease lapses.
    assert set(locks.targets_queued_due(list(others | {handed.pk}))) == others
    locks.clear_target_queued(list(others))


def test_a_claim_made_for_the_worker_is_a_claim_that_finishes(start, sent):
    driver = start([step("one"), step("two", "one")])
    driver.run("one")
    with dispatch.taking_one_target() as taken, TestCase.captureOnCommitCallbacks(execute=True):
        driver.update()
    claim = taken[0]
    assert claim.target.step_key == "two"
    assert engine.begin_target(claim.target.pk) is None, "a duplicate claimed it again"
    assert engine.finish_target(claim, queue_update=False)
    assert BuildTarget.objects.get(pk=claim.target.pk).status == "passed"
    assert [name for name, _ in sent] == []


def test_a_rolled_back_pass_hands_nothing_over(start, sent, monkeypatch):
    driver = start([step("one"), step("two", "one")])
    driver.run("one")

    def broken(*args, **kwargs):
        raise RuntimeError("the pass failed after creating its targets")

    monkeypatch.setattr("builds.engine.passes.update_buildable", broken)
    monkeypatch.setattr("builds.engine.passes.PassResult.completion_changed", True)
    with dispatch.taking_one_target() as taken, TestCase.captureOnCommitCallbacks(execute=True):
        with pytest.raises(RuntimeError):
            engine.update_build(driver.build.pk)
    assert taken == []
    assert not BuildTarget.objects.filter(build=driver.build, step_key="two").exists()


def test_without_a_taker_every_created_target_is_queued(start, sent):
    driver = start([step("one"), step("two", "one")])
    driver.run("one")
    with TestCase.captureOnCommitCallbacks(execute=True):
        result = driver.update()
    assert [t for name, t in sent if name == "workers.tasks.run_target"] == list(
        result.created_target_ids
    )
    assert BuildTarget.objects.get(build=driver.build, step_key="two").status == "pending"
    locks.clear_target_queued(list(result.created_target_ids))


def test_a_target_of_a_concurrency_group_is_never_claimed_by_the_pass(start, sent):
    driver = start(
        [step("one"), {**step("two", "one"), "config": {"concurrency": {"group": "g", "limit": 1}}}]
    )
    driver.run("one")
    with dispatch.taking_one_target() as taken, TestCase.captureOnCommitCallbacks(execute=True):
        result = driver.update()
    assert taken == []
    assert BuildTarget.objects.get(build=driver.build, step_key="two").status == "pending"
    locks.clear_target_queued(list(result.created_target_ids))


def test_a_finish_is_kept_when_the_pass_it_was_made_in_fails(start, sent, monkeypatch):
    driver = start([step("one"), step("two", "one")])
    claim = driver.claim("one")

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the pass, after the finish")

    monkeypatch.setattr("builds.engine.passes._create_targets", broken)
    with pytest.raises(RuntimeError):
        tasks._finish_and_pass(claim, StepOutcome())
    # The pass (and the finish made in it) rolled back; the finish was then made alone.
    assert BuildTarget.objects.get(pk=claim.target.pk).status == "passed"
    assert driver.build.__class__.objects.get(pk=driver.build.pk).status == "error"


def test_a_finish_made_in_the_workers_pass_is_read_by_that_pass(start, sent, monkeypatch):
    driver = start([step("one"), step("two", "one")])
    claim = driver.claim("one")

    def alone(*args, **kwargs):
        raise AssertionError("the finish was made alone, though the lock was free")

    monkeypatch.setattr(engine, "finish_target", alone)
    with dispatch.taking_one_target() as taken, TestCase.captureOnCommitCallbacks(execute=True):
        tasks._finish_and_pass(claim, StepOutcome())
    assert BuildTarget.objects.get(pk=claim.target.pk).status == "passed"
    assert [c.target.step_key for c in taken] == ["two"]
    assert sent == [], "an update or a run_target was queued for what the pass did itself"


@pytest.mark.django_db(transaction=True)
def test_with_the_row_held_and_the_redis_lock_free_the_finish_waits_for_the_row(
    start, sent, other, build_row_held, monkeypatch
):
    """Another transaction holds the build's row (a sender's pass, say) and nobody holds its
    Redis lock: the worker takes the lock and waits for the row, then makes its finish in
    that pass, which reads it and takes the next target for the worker."""
    driver = start([step("one"), step("two", "one")])
    claim = driver.claim("one")

    def alone(*args, **kwargs):
        raise AssertionError("the finish was made alone, though the Redis lock was free")

    monkeypatch.setattr(engine, "finish_target", alone)
    waiting_before, blocked = lock_waiters(), []
    build_row_held(driver.build.pk)

    def release_once_blocked() -> None:
        try:
            wait_until_blocked_on_lock(what="the worker's pass", baseline=waiting_before)
            blocked.append(True)
        finally:
            other.rollback()
            connection.close()

    releaser = threading.Thread(target=release_once_blocked)
    releaser.start()
    with dispatch.taking_one_target() as taken:
        tasks._finish_and_pass(claim, StepOutcome())
    releaser.join(10)
    assert blocked == [True], "the worker's pass never waited for the build's row"
    assert BuildTarget.objects.get(pk=claim.target.pk).status == "passed"
    assert [c.target.step_key for c in taken] == ["two"]
    assert not locks.client().exists(locks.lock_key(driver.build.pk))
