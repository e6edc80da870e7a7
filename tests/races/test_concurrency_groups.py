"""Concurrency groups on real workers: engine workers racing never run more targets of a
group at once than its limit, and neither an abort nor a killed worker leaves a group
blocked. Each test runs on queues of its own (``Cluster``, as tests/races/test_crashes.py)."""

import time

import pytest

from builds import engine
from builds.models import Build, BuildPlan, BuildTarget
from tests.conftest import make_plan
from tests.races.test_crashes import (  # noqa: F401  (cluster is a fixture)
    BOUND,
    LEASE,
    SLACK,
    TICK,
    assert_clean,
    cluster,
    wait_status,
)
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]


def deploy_plan(name: str, limit: int, seconds: float = 0, **step) -> BuildPlan:
    """A plan of one sleep step in the group ``deploy-<ref>`` of ``limit`` slots."""
    concurrency = {"group": "deploy-${buildable.ref}", "limit": limit}
    config = {"seconds": seconds, "concurrency": concurrency}
    return make_plan(name, [{"key": "deploy", "step_type": "sleep", "config": config, **step}])


def overlaps(targets: list[BuildTarget]) -> int:
    """The most targets that were building or waiting at one moment, from their start and
    end times."""
    edges = sorted(
        [(t.date_started, 1) for t in targets] + [(t.date_completed, -1) for t in targets],
        key=lambda edge: (edge[0], edge[1]),  # an end before a start at the same instant
    )
    running = most = 0
    for _, change in edges:
        running += change
        most = max(most, running)
    return most


@pytest.mark.parametrize("limit", [1, 2])
def test_engine_workers_racing_never_run_more_than_the_limit(cluster, limit):  # noqa: F811
    c = cluster()
    c.worker(queues="engine", concurrency=2)
    c.worker(queues="engine", concurrency=2)
    c.worker(queues="targets", concurrency=4)
    # Two plans, one group: a group spans plans.
    plans = [deploy_plan(f"deploy-{i}", limit, seconds=0.5) for i in range(2)]
    buildables = [engine.find_or_create_buildable("repo", "main", f"{i:040x}") for i in range(6)]
    c.sending = True
    builds = [engine.start_build(plans[i % 2], b) for i, b in enumerate(buildables)]

    began = time.monotonic()
    for build in builds:
        wait_status(build, "passed", timeout=60 + SLACK)
    print(f"limit {limit}: 6 builds passed in {time.monotonic() - began:.1f} s")
    targets = list(BuildTarget.objects.filter(build__in=builds))
    assert len(targets) == 6 and {t.concurrency_group for t in targets} == {"deploy-main"}
    assert overlaps(targets) <= limit, [(t.date_started, t.date_completed) for t in targets]
    for build in builds:
        assert_clean(build)


def test_an_abort_frees_the_slot_for_the_next_build(cluster):  # noqa: F811
    c = cluster()
    c.worker(queues="engine,targets", concurrency=2)
    plan = deploy_plan("deploy", 1, wait_for_message=True)
    c.sending = True
    first = engine.start_build(plan, engine.find_or_create_buildable("repo", "main", "a" * 40))
    holder = wait_for(lambda: BuildTarget.objects.filter(build=first, status="waiting").first())
    second = engine.start_build(plan, engine.find_or_create_buildable("repo", "main", "b" * 40))
    queued = wait_for(lambda: BuildTarget.objects.filter(build=second).first())
    time.sleep(1)  # room for a wrongful start
    queued.refresh_from_db()
    assert (queued.status, queued.date_admitted) == ("pending", None)

    engine.receive_message(first.phid, "abort")

    began = time.monotonic()
    wait_status(first, "aborted", timeout=SLACK)
    started = wait_for(
        lambda: BuildTarget.objects.filter(pk=queued.pk, status="waiting").first(),
        timeout=SLACK,
        message="the queued target did not start after the abort",
    )
    print(f"abort: the queued target was waiting {time.monotonic() - began:.1f} s later")
    holder.refresh_from_db()
    assert started.date_started >= holder.date_completed


def test_a_killed_worker_does_not_leave_the_group_blocked(cluster):  # noqa: F811
    c = cluster()
    # Both target workers are up before the step starts (one is the replacement).
    target_workers = [c.worker(queues="targets"), c.worker(queues="targets")]
    c.worker(queues="engine", beat=True)
    plan = deploy_plan("deploy", 1, seconds=4)
    c.sending = True
    first = engine.start_build(plan, engine.find_or_create_buildable("repo", "main", "a" * 40))
    running = wait_for(lambda: BuildTarget.objects.filter(build=first, status="building").first())
    second = engine.start_build(plan, engine.find_or_create_buildable("repo", "main", "b" * 40))
    victim = wait_for(
        lambda: next((w for w in target_workers if _running(w)), None),
        message="no worker received the first target",
    )
    time.sleep(0.5)
    victim.kill()

    wait_status(first, "passed", timeout=LEASE + TICK + BOUND + 4 + SLACK)
    took = wait_status(second, "passed", timeout=4 + TICK + BOUND + SLACK)
    print(f"killed worker: the next build passed {took:.1f} s after the first")
    running.refresh_from_db()
    assert running.lost_claims == 1  # it lost its worker, was claimed again and finished
    follower = BuildTarget.objects.get(build=second)
    assert follower.date_started >= running.date_completed
    assert Build.objects.get(pk=second.pk).status == "passed"


def _running(worker) -> bool:
    return any("tasks.run_target[" in line and " received" in line for line in worker.output)
