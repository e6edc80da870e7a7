"""Reclaims go ahead of ordinary work: what the repair task re-queues (a target whose task
was lost, a claim whose worker was lost) is sent at the broker's highest priority, so it
does not wait behind a backlog in the targets queue. And the bound this gives after a
step worker dies: the lease, one repair run, and the step a worker is busy with.

Each test has queues of its own (a prefix of its own), so no other worker of the test run
takes its tasks; the test process plays beat, running the repair task.
"""

import itertools
import os
import threading
import time

import pytest
from celery import Celery
from kombu import Queue

from builds import engine
from builds.engine import dispatch
from builds.models import BuildTarget
from tests.conftest import make_plan
from tests.workers import WorkerProcess, wait_for
from workers import tasks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]

LEASE = 2  # HARBOR_TARGET_LEASE of the workers, seconds
BOUND = 3  # HARBOR_REPAIR_BOUND, seconds
TICK = 1  # how often the test runs the repair, as beat would (BOUND / 3)
STEP = 0.5  # seconds each backlog step takes
SLACK = 5  # a loaded 2-core machine: process hand-offs, polling
_prefixes = itertools.count()


@pytest.fixture
def prefix(monkeypatch, settings) -> str:
    """A queue prefix of this test's own, used by the engine's follow-ups sent from here."""
    own = f"harborreclaim{os.getpid()}x{next(_prefixes)}"
    app = Celery("reclaim-tests", broker=settings.REDIS_URL, set_as_current=False)
    app.conf.task_queues = [Queue(f"{own}.engine"), Queue(f"{own}.targets")]
    app.conf.task_default_queue = f"{own}.targets"
    old = settings.HARBOR_QUEUE_PREFIX
    app.conf.task_routes = {
        name: {**route, "queue": route["queue"].replace(old, own, 1)}
        for name, route in settings.CELERY_TASK_ROUTES.items()
    }
    monkeypatch.setattr(dispatch, "current_app", app)
    settings.HARBOR_QUEUE_PREFIX = own
    settings.HARBOR_REPAIR_BOUND = BOUND
    return own


def worker(prefix: str) -> WorkerProcess:
    return WorkerProcess(
        concurrency=1, queues="targets", HARBOR_QUEUE_PREFIX=prefix, HARBOR_TARGET_LEASE=str(LEASE)
    )


def build_with_targets(buildable, name: str, steps: int, seconds: float, send: bool = True):
    """A build whose start (run here) created ``steps`` targets of sleep steps; their
    ``run_target`` tasks are queued unless ``send`` is False (then they are lost)."""
    plan = make_plan(name, [{"key": f"s{i}", "config": {"seconds": seconds}} for i in range(steps)])
    if send:
        return engine.start_build(plan, buildable)
    real = dispatch.run_targets
    dispatch.run_targets = lambda *args, **kwargs: None
    try:
        return engine.start_build(plan, buildable)
    finally:
        dispatch.run_targets = real


def started_order(*builds) -> list[int]:
    """The ids of the builds' targets in the order their steps first started."""
    targets = BuildTarget.objects.filter(build__in=builds, date_started__isnull=False)
    return list(targets.order_by("date_started").values_list("pk", flat=True))


def test_a_target_the_repair_requeues_runs_before_a_backlog_queued_earlier(prefix, buildable):
    backlog = build_with_targets(buildable, "backlog", 12, 0.1)
    lost_build = build_with_targets(buildable, "lost", 1, 0, send=False)
    lost = BuildTarget.objects.get(build=lost_build)
    BuildTarget.objects.filter(pk=lost.pk).update(date_created=lost.date_created.replace(year=2020))
    tasks.repair_builds()
    # Only the lost target was re-queued: the backlog's tasks are waiting, not missing.
    assert dispatch.queued_task_count("targets") == 13
    runner = worker(prefix).start()
    try:
        wait_for(lambda: len(started_order(backlog, lost_build)) == 13, timeout=60)
    finally:
        runner.stop()
    assert started_order(backlog, lost_build)[0] == lost.pk


def test_a_dead_workers_target_is_claimed_again_within_lease_tick_and_one_step(prefix, buildable):
    long_build = build_with_targets(buildable, "long", 1, 8)
    doomed = worker(prefix).start()
    try:
        target = wait_for(
            lambda: BuildTarget.objects.filter(build=long_build, status="building").first(),
            timeout=30,
        )
        backlog = build_with_targets(buildable, "busy", 40, STEP)  # 20 s of ordinary work
        survivor = worker(prefix).start()
        wait_for(lambda: started_order(backlog), timeout=30)  # the survivor is busy
        doomed.kill()
        killed_at = time.monotonic()
        reclaimed_at = repair_until_claimed_again(target)
        waited = reclaimed_at - killed_at
    finally:
        doomed.stop()
        survivor.stop()
    assert waited <= LEASE + TICK + STEP + SLACK, f"reclaimed after {waited:.1f} s"
    # The backlog was not drained first: the reclaim did not wait its turn behind it.
    assert BuildTarget.objects.filter(build=backlog, date_started__isnull=True).exists()


def repair_until_claimed_again(target: BuildTarget, timeout: float = 60) -> float:
    """Run the repair every TICK, as beat would, until ``target`` is claimed again; return
    when (``time.monotonic()``)."""
    done = threading.Event()

    def claimed_again() -> bool:
        return BuildTarget.objects.filter(pk=target.pk, attempt__gt=target.attempt).exists()

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks.repair_builds()
        tick_ends = time.monotonic() + TICK
        while time.monotonic() < tick_ends:
            if claimed_again():
                done.set()
                return time.monotonic()
            time.sleep(0.05)
    raise AssertionError(f"target {target.pk} not claimed again within {timeout} s")
