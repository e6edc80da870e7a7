"""A worker that finishes a target runs the build's pass itself and runs the next target
that pass created (``workers.tasks.run_target``), on real workers, racing queued
``update_build`` tasks for the same builds."""

import threading

import pytest

from builds.engine import dispatch
from builds.models import StatusEvent
from tests.races.conftest import complete_while, start_builds, wait_until_complete
from tests.races.test_wide_builds import deliveries
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]

CHAIN = [
    {"key": "one", "step_type": "sleep", "config": {"seconds": 0}},
    {"key": "two", "step_type": "sleep", "config": {"seconds": 0}, "depends_on": ["one"]},
    {"key": "three", "step_type": "sleep", "config": {"seconds": 0}, "depends_on": ["two"]},
    {"key": "four", "step_type": "sleep", "config": {"seconds": 0}, "depends_on": ["three"]},
]


def test_a_chain_of_steps_needs_no_task_per_step(celery_workers, buildable):
    """The start runs the first pass, and each step's pass runs in the worker that finished
    it and hands it the next step: the whole build costs one task."""
    updates = deliveries(celery_workers, "workers.tasks.update_build")
    runs = deliveries(celery_workers, "workers.tasks.run_target")
    (build,) = start_builds(CHAIN, 1, buildable)
    assert wait_until_complete([build]) == {build.pk: "passed"}
    # The first step's run_target; no update_build, nothing per later step. Worker logs
    # are read as they come, so wait for the line rather than race it.
    wait_for(lambda: deliveries(celery_workers, "workers.tasks.run_target") > runs)
    assert deliveries(celery_workers, "workers.tasks.run_target") - runs == 1
    assert deliveries(celery_workers, "workers.tasks.update_build") - updates == 0


def test_workers_own_passes_racing_queued_updates_settle_each_target_once(
    celery_workers, buildable, monitored
):
    """While 20 chains run, update_build is queued for each of their builds over and over:
    those passes race the finishing workers' own passes for the builds' locks. Every build
    passes, each target is claimed once and completes once."""
    builds = start_builds(CHAIN, 20, buildable)

    def queue_updates(done: threading.Event) -> None:
        while not done.is_set():
            for build in builds:
                dispatch.update_build(build.pk)
            done.wait(0.01)

    statuses = complete_while(queue_updates, builds)
    assert set(statuses.values()) == {"passed"}
    for build in builds:
        targets = list(build.targets.order_by("step_key"))
        assert len(targets) == len(CHAIN)
        assert [t.attempt for t in targets] == [1] * len(CHAIN), "a target was claimed twice"
        for target in targets:
            settled = StatusEvent.objects.filter(target=target, to_status="passed").count()
            assert settled == 1, f"target {target.step_key} completed {settled} times"
