"""Wide builds: N parallel trivial steps and a join, for N = 30, 100 and 300.

    .venv/bin/python bench/width.py [--widths 30,100,300]

Uses the bench's own world (``bench/harness.py``: the database ``harbor_bench`` re-created,
Redis database 13, queues ``harborbench.*``) and its processes: an engine worker and a
targets worker, 2 prefork processes each. For each width it starts one build through the
engine and prints the time per step (start to ``passed``, divided by the steps), the
``run_target`` and ``update_build`` deliveries per target (counted in the workers' logs),
and the time per step as a ratio to the narrowest build's.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402


def fan_out_plan(width: int) -> dict:
    branches = [{"key": f"b{i}", "type": "sleep", "seconds": 0} for i in range(width)]
    join = {
        "key": "join",
        "type": "sleep",
        "seconds": 0,
        "depends_on": [b["key"] for b in branches],
    }
    return {"name": f"bench-width-{width}", "steps": [*branches, join]}


def deliveries(process: harness.Process, task: str) -> int:
    return sum(
        1 for line in process.log_text().splitlines() if f"{task}[" in line and "received" in line
    )


def run_width(cluster: harness.Cluster, width: int) -> dict:
    from builds import engine  # noqa: PLC0415 (needs Django set up)
    from builds.models import Build  # noqa: PLC0415
    from builds.plans import import_plan  # noqa: PLC0415

    plan = import_plan(fan_out_plan(width))
    targets, engine_worker = cluster.processes["targets"], cluster.processes["engine"]
    runs, updates = deliveries(targets, "run_target"), deliveries(engine_worker, "update_build")
    buildable = engine.find_or_create_buildable("bench", commit=f"width-{width}")
    started = time.monotonic()
    build = engine.start_build(plan, buildable)
    while Build.objects.filter(pk=build.pk).values_list("status", flat=True).get() != "passed":
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    harness.wait_quiet()
    steps = width + 1
    return {
        "width": width,
        "seconds": elapsed,
        "ms per step": 1000 * elapsed / steps,
        "run_target per target": (deliveries(targets, "run_target") - runs) / steps,
        "update_build per target": (deliveries(engine_worker, "update_build") - updates) / steps,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="30,100,300")
    widths = [int(w) for w in parser.parse_args().widths.split(",")]
    print(f"load average before: {harness.load_average()}  (cores: {os.cpu_count()})")
    harness.fresh_world()
    cluster = harness.Cluster().start()
    try:
        rows = [run_width(cluster, width) for width in widths]
    finally:
        cluster.stop()
    first = rows[0]["ms per step"]
    print(f"{'width':>6} {'s':>7} {'ms/step':>8} {'ratio':>6} {'run_target/t':>13} {'update/t':>9}")
    for row in rows:
        print(
            f"{row['width']:>6} {row['seconds']:>7.2f} {row['ms per step']:>8.1f}"
            f" {row['ms per step'] / first:>6.2f} {row['run_target per target']:>13.2f}"
            f" {row['update_build per target']:>9.2f}"
        )
    print(f"load average after: {harness.load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
