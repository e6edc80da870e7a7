"""A wide build (hundreds of parallel steps and a join) on real workers: each target is
queued once, so a step costs about one ``run_target`` delivery, however wide the build.

Before, every pass queued every pending target again, and each redundant ``run_target``
asked for another pass: 57 deliveries per target in a 101-step build."""

import pytest

from builds import engine
from builds.models import Build
from tests.conftest import make_plan
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]

WIDTH = 300


def fan_out_plan(width: int):
    branches = [
        {"key": f"b{i}", "step_type": "sleep", "config": {"seconds": 0}} for i in range(width)
    ]
    join = {
        "key": "join",
        "step_type": "sleep",
        "config": {"seconds": 0},
        "depends_on": [b["key"] for b in branches],
    }
    return make_plan(f"fan-out-{width}", [*branches, join])


def deliveries(workers, task: str) -> int:
    return sum(
        1 for w in workers for line in list(w.output) if f"{task}[" in line and "received" in line
    )


def test_a_300_step_fan_out_costs_about_one_run_target_delivery_per_target(
    celery_workers, buildable
):
    runs_before = deliveries(celery_workers, "workers.tasks.run_target")
    build = engine.start_build(fan_out_plan(WIDTH), buildable)
    wait_for(
        lambda: Build.objects.get(pk=build.pk).status == "passed",
        timeout=120,
        interval=0.2,
        message="the fan-out did not pass",
    )
    targets = build.targets.count()
    assert targets == WIDTH + 1
    runs = deliveries(celery_workers, "workers.tasks.run_target") - runs_before
    assert runs <= targets * 1.05, f"{runs} run_target deliveries for {targets} targets"
