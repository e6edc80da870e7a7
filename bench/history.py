"""Test history at scale: a million stored unit results in one plan, and the pages that
read them.

    .venv/bin/python bench/history.py [--builds 20] [--units 50000] [--runs 5]

Uses the bench's own database (``bench/harness.py``; ``HARBOR_BENCH_DB`` names another).
Bulk-inserts ``--builds`` failed builds of one plan, two per commit on one ref, each with
a target of ``--units`` unit results (1 % failing in every build, 0.1 % more failing in
every other build: flaky on their commit), then, with Django's test client in this
process, times the latest build's page (with its new/known/flaky marks), a failing test's
history page and the plan page (flakiest and slowest tests): median server time, size and
queries of ``--runs`` requests each, with the machine's load average.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402
from bench.page import measure, one_target_build, report  # noqa: E402

BATCH = 10_000


def insert_builds(world, builds: int, units: int) -> list:
    """``builds`` builds of the wait plan with ``units`` unit results each; returns them."""
    from django.db import transaction  # noqa: PLC0415 (Django is set up by fresh_world)

    from builds.models import Buildable

    made = []
    for number in range(builds):
        with transaction.atomic():
            buildable, _ = Buildable.objects.get_or_create(
                repository="https://github.com/bench/app.git",
                commit=f"{number // 2:040x}",
                defaults={"ref": "refs/heads/main"},
            )
            build, target = one_target_build(world.wait_plan, buildable, "failed", "failed")
            insert_units(target, units, flaky_fails=number % 2 == 1)
        made.append(build)
    return made


def insert_units(target, units: int, flaky_fails: bool) -> None:
    from builds.models import UnitResult  # noqa: PLC0415

    def result(i: int) -> UnitResult:
        failing = i % 100 == 0 or (flaky_fails and i % 1000 == 7)
        return UnitResult(
            target=target,
            name=f"test_case_{i}",
            namespace=f"tests/test_module_{i // 50}.py",
            engine="pytest",
            result="fail" if failing else "pass",
            duration=0.001 * (i % 997),
            details="AssertionError: expected 1 got 2\n" if failing else "",
        )

    for start in range(0, units, BATCH):
        UnitResult.objects.bulk_create(result(i) for i in range(start, min(units, start + BATCH)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=20)
    parser.add_argument("--units", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    world = harness.fresh_world()
    from django.test import Client  # noqa: PLC0415
    from django.urls import reverse  # noqa: PLC0415

    from accounts.models import User  # noqa: PLC0415
    from bench import world as world_module  # noqa: PLC0415
    from builds import test_history  # noqa: PLC0415

    start = time.perf_counter()
    builds = insert_builds(world, args.builds, args.units)
    world_module.analyze()
    total = args.builds * args.units
    print(
        f"inserted {total:,} unit results in {args.builds} builds in "
        f"{time.perf_counter() - start:.1f} s; load {harness.load_average()}"
    )
    client = Client()
    client.force_login(User.objects.get(username="bench"))
    plan_id = builds[-1].plan_id
    flaky = test_history.key_of("tests/test_module_0.py", "test_case_7")
    pages = {
        "build page (marks)": builds[-1].get_absolute_url(),
        "test history page": reverse("plan-test", args=[plan_id, flaky]),
        "plan page (ranked)": reverse("plan-detail", args=[plan_id]),
    }
    for name, url in pages.items():
        report(name, measure(client, url, args.runs))
    print(f"load {harness.load_average()}")


if __name__ == "__main__":
    main()
