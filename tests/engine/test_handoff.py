"""A finishing worker runs the build's pass itself and takes the next target
(``finish_target(queue_update=False)``, ``dispatch.taking_one_target``)."""

import pytest
from celery import current_app
from django.test import TestCase

from builds import engine, locks
from builds.engine import dispatch
from builds.models import BuildTarget

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


def test_the_pass_hands_one_created_target_to_the_worker_and_queues_the_rest(start, sent):
    driver = start([step("one"), step("two", "one"), step("three", "one")])
    driver.run("one")
    with dispatch.taking_one_target() as taken, TestCase.captureOnCommitCallbacks(execute=True):
        result = driver.update()
    created = sorted(result.created_target_ids)
    assert len(created) == 2 and len(taken) == 1 and taken[0] in created
    queued = [t for name, t in sent if name == "workers.tasks.run_target"]
    assert queued == [t for t in result.created_target_ids if t != taken[0]]
    # Only the queued one is marked as queued: the taken one, if its worker died, is the
    # repair task's to find (a pending target with no mark).
    assert set(locks.targets_queued_due(created)) == set(queued)
    locks.clear_target_queued(created)


def test_without_a_taker_every_created_target_is_queued(start, sent):
    driver = start([step("one"), step("two", "one")])
    driver.run("one")
    with TestCase.captureOnCommitCallbacks(execute=True):
        result = driver.update()
    assert [t for name, t in sent if name == "workers.tasks.run_target"] == list(
        result.created_target_ids
    )
    locks.clear_target_queued(list(result.created_target_ids))


def test_a_postponed_target_is_never_taken(sent):
    with dispatch.taking_one_target() as taken:
        dispatch.run_targets([10**9], countdown=30)
    assert taken == [] and sent == [("workers.tasks.run_target", 10**9)]
    locks.clear_target_queued([10**9])


def test_the_taken_target_runs_as_the_next_step(start, sent):
    driver = start([step("one"), step("two", "one")])
    driver.run("one")
    with dispatch.taking_one_target() as taken, TestCase.captureOnCommitCallbacks(execute=True):
        driver.update()
    assert BuildTarget.objects.get(pk=taken[0]).step_key == "two"
    assert engine.begin_target(taken[0]) is not None
