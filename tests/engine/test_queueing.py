"""Queueing build targets: once, by the pass that creates them; the repair task queues
again only what it can show is missing, never a task waiting its turn in a busy queue."""

import os
import time
from datetime import timedelta

import kombu.exceptions
import pytest
from celery import current_app
from django.test import TestCase
from django.utils import timezone

from builds import engine, locks
from builds.engine import dispatch
from builds.models import Build, BuildTarget
from tests.conftest import make_plan

pytestmark = pytest.mark.django_db


def sleep_step(key: str, depends_on=()) -> dict:
    return {
        "key": key,
        "step_type": "sleep",
        "config": {"seconds": 0},
        "depends_on": list(depends_on),
    }


FAN_OUT = [sleep_step("a"), sleep_step("b"), sleep_step("join", depends_on=["a", "b"])]


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """The target ids the engine hands to ``run_target``, in order (nothing is sent)."""
    sent: list[int] = []
    monkeypatch.setattr(
        dispatch, "run_targets", lambda ids, countdown=0, reclaim=False: sent.extend(ids)
    )
    monkeypatch.setattr(dispatch, "request_update", lambda build_id: None)
    return sent


def run_pass(build: Build) -> None:
    with TestCase.captureOnCommitCallbacks(execute=True):
        engine.update_build(build.pk)


def test_a_pass_queues_only_the_targets_it_created(buildable, queued):
    with TestCase.captureOnCommitCallbacks(execute=True):
        build = engine.start_build(make_plan("fan", FAN_OUT), buildable)  # its first pass
    run_pass(build)
    a, b = (BuildTarget.objects.get(build=build, step_key=k) for k in ("a", "b"))
    assert sorted(queued) == sorted([a.pk, b.pk])
    engine.finish_target(engine.begin_target(a.pk))
    run_pass(build)
    run_pass(build)
    assert sorted(queued) == sorted([a.pk, b.pk]), "a pending target was queued again"
    engine.finish_target(engine.begin_target(b.pk))
    run_pass(build)
    join = BuildTarget.objects.get(build=build, step_key="join")
    assert queued[2:] == [join.pk]


@pytest.mark.django_db(transaction=True)
def test_a_broker_error_after_a_pass_committed_leaves_its_targets_to_the_repair(
    buildable, monkeypatch
):
    """The pass commits, then publishing its new targets fails: the build is not set to
    ``error``, the targets' queued marks are cleared, so the repair finds them."""

    def broker_down(*args, **kwargs):
        raise kombu.exceptions.OperationalError("broker down")

    monkeypatch.setattr(dispatch, "request_update", lambda build_id: None)
    monkeypatch.setattr(current_app, "send_task", broker_down)
    build = engine.start_build(make_plan("broker", FAN_OUT), buildable)  # its first pass
    assert Build.objects.get(pk=build.pk).status == "building"
    targets = sorted(BuildTarget.objects.filter(build=build).values_list("pk", flat=True))
    assert BuildTarget.objects.filter(pk__in=targets, status="pending").count() == 2
    assert locks.targets_queued_due(targets) == {}
    assert sorted(engine.find_lost_work(0).target_ids) == targets


class OwnTargetsQueue:
    """A targets queue of the test's own (no worker consumes it), to fill or leave empty."""

    def __init__(self, settings):
        settings.HARBOR_QUEUE_PREFIX = f"harborqueueing{os.getpid()}"
        self.name = f"{settings.HARBOR_QUEUE_PREFIX}.targets"

    def add_waiting_task(self) -> None:
        current_app.send_task("workers.tasks.run_target", args=(0,), queue=self.name)

    def clear(self) -> None:
        # Purged through the broker: a queue is one Redis list per priority step.
        with current_app.connection_for_write() as connection:
            connection.default_channel.queue_purge(self.name)


@pytest.fixture
def own_queue(settings):
    queue = OwnTargetsQueue(settings)
    yield queue
    queue.clear()


def pending_target(buildable) -> int:
    build = engine.start_build(make_plan(f"p{time.monotonic_ns()}", [sleep_step("a")]), buildable)
    engine.update_build(build.pk)
    return BuildTarget.objects.get(build=build).pk


def test_the_repair_leaves_a_target_whose_task_waits_in_a_busy_queue(buildable, own_queue):
    target = pending_target(buildable)
    locks.mark_targets_queued([target])
    own_queue.add_waiting_task()
    time.sleep(0.01)
    assert engine.find_lost_work(0).target_ids == []


def test_the_repair_queues_again_a_target_whose_mark_is_overdue_while_the_queue_is_empty(
    buildable, own_queue
):
    target = pending_target(buildable)
    locks.mark_targets_queued([target])
    time.sleep(0.01)
    assert engine.find_lost_work(0).target_ids == [target]
    assert engine.find_lost_work(60).target_ids == []  # not overdue by a minute yet


def test_the_repair_queues_again_a_target_with_no_mark(buildable, own_queue):
    target = pending_target(buildable)
    locks.clear_target_queued([target])
    own_queue.add_waiting_task()
    assert engine.find_lost_work(0).target_ids == [target]


def test_the_repair_leaves_a_postponed_target_until_it_is_due(buildable, own_queue):
    target = pending_target(buildable)
    locks.mark_targets_queued([target], countdown=30)
    assert engine.find_lost_work(0).target_ids == []


def test_a_worker_starting_the_task_clears_the_mark(buildable, own_queue, monkeypatch):
    monkeypatch.setattr(dispatch, "request_update", lambda build_id: None)
    target = pending_target(buildable)
    locks.mark_targets_queued([target])
    from workers.tasks import run_target

    run_target(target)
    assert locks.targets_queued_due([target]) == {}
    assert BuildTarget.objects.get(pk=target).status == "passed"


def test_the_repair_leaves_a_pending_target_a_worker_has_started_to_claim(buildable, own_queue):
    target = pending_target(buildable)
    long_ago = timezone.now() - timedelta(seconds=120)
    BuildTarget.objects.filter(pk=target).update(date_created=long_ago)
    locks.mark_targets_queued([target])
    # The worker took the task; its claim waits on the target's row lock (a pass holds it).
    locks.take_target_queued(target, hold_seconds=60)
    assert engine.find_lost_work(60).target_ids == []
    # The worker was lost before its claim: once its mark is gone, the target is found.
    locks.clear_target_queued([target])
    assert engine.find_lost_work(60).target_ids == [target]
