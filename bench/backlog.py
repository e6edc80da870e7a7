"""Repair under a backlog: about 500 pending targets behind 100 ms of database latency.

    .venv/bin/python bench/backlog.py [--builds 50] [--width 10] [--rtt-ms 100]

Uses a bench world of its own (``bench/harness.py``'s, with the database
``harbor_bench_backlog``, Redis database 11, queues ``harborbacklog.*`` and port 8391, so
it runs beside ``bench/perf.py``) and the bench's processes, with beat (the repair
task) and every process reaching PostgreSQL through ``bench/forwarder.py``, which adds
``--rtt-ms`` to each round trip; the bench itself writes directly. Settings as in the
fault report's runs: ``HARBOR_TARGET_LEASE=10``, ``HARBOR_REPAIR_BOUND=6`` (repair every 2 s).
It starts ``--builds`` builds of ``--width`` parallel ``sleep 0`` steps at once, so their
first passes queue builds × width ``run_target`` tasks, far more than the workers take in
a repair period; then waits until every build has passed and prints, from the workers'
logs: the repair's re-queues (in all, and per target per lease period), ``run_target``
deliveries per target (mean and most), ``update_build`` deliveries per build, the deepest
the targets queue got, and how long the builds took to settle.
"""

import argparse
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402
from bench.forwarder import Forwarder  # noqa: E402

LEASE = 10
BOUND = 6
SETTLE = 1200  # seconds the builds have to pass


def plan(width: int) -> dict:
    steps = [{"key": f"s{i}", "type": "sleep", "seconds": 0} for i in range(width)]
    return {"name": f"bench-backlog-{width}", "steps": steps}


def count(log: str, pattern: str) -> Counter:
    """Occurrences of ``pattern``'s first group in ``log``, by value."""
    return Counter(int(found) for found in re.findall(pattern, log))


def run(builds: int, width: int) -> dict:
    from builds import engine  # noqa: PLC0415 (needs Django set up)
    from builds.models import Build  # noqa: PLC0415
    from builds.plans import import_plan  # noqa: PLC0415

    chosen = import_plan(plan(width))
    started = time.monotonic()
    ids = []
    for index in range(builds):
        buildable = engine.find_or_create_buildable("bench", commit=f"backlog-{index}")
        ids.append(engine.start_build(chosen, buildable).pk)
    deepest = 0
    deadline = started + SETTLE
    while Build.objects.filter(pk__in=ids).exclude(status="passed").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"builds not settled after {SETTLE} s")
        deepest = max(deepest, harness.queued_tasks("targets"))
        time.sleep(0.5)
    return {"seconds": time.monotonic() - started, "deepest": deepest, "targets": builds * width}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=50)
    parser.add_argument("--width", type=int, default=10)
    parser.add_argument("--rtt-ms", type=float, default=100)
    parser.add_argument("--target-concurrency", type=int, default=8)
    args = parser.parse_args()
    print(f"load average before: {harness.load_average()}  (cores: {os.cpu_count()})")
    # A world apart from bench/perf.py's (its database, Redis database, queues and port), so
    # the two can run on one machine without dropping each other's database.
    harness.BENCH_DB = os.environ.get("HARBOR_BACKLOG_DB", "harbor_bench_backlog")
    harness.BENCH_REDIS_DB, harness.PREFIX, harness.PORT = 11, "harborbacklog", 8391
    harness.fresh_world()
    slow = Forwarder(("127.0.0.1", 0), ("127.0.0.1", 5432))
    slow.delay = args.rtt_ms / 2000
    harness.TARGET_CONCURRENCY = args.target_concurrency
    harness.ENGINE_CONCURRENCY = 4
    env = {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{slow.address[1]}/{harness.BENCH_DB}",
        "HARBOR_TARGET_LEASE": str(LEASE),
        "HARBOR_REPAIR_BOUND": str(BOUND),
    }
    cluster = harness.Cluster(env=env, beat=True).start()
    try:
        result = run(args.builds, args.width)
        engine_log = cluster.processes["engine"].log_text()
        targets_log = cluster.processes["targets"].log_text()
    finally:
        cluster.stop()
        slow.close()
    report(args, result, engine_log, targets_log)
    print(f"load average after: {harness.load_average()}")
    return 0


def report(args, result: dict, engine_log: str, targets_log: str) -> None:
    targets, seconds = result["targets"], result["seconds"]
    requeued = count(engine_log, r"repair: build target (\d+) has no run_target")
    delivered = count(targets_log, r"build target (\d+): run_target started")
    updates = len(re.findall(r"workers\.tasks\.update_build\[[^\]]+\] received", engine_log))
    periods = seconds / LEASE
    print(
        f"{args.builds} builds x {args.width} steps = {targets} targets; "
        f"+{args.rtt_ms:.0f} ms per database round trip; lease {LEASE} s, repair bound "
        f"{BOUND} s; {harness.TARGET_CONCURRENCY} target and {harness.ENGINE_CONCURRENCY} "
        "engine worker processes"
    )
    print(f"settled in {seconds:.1f} s ({periods:.1f} lease periods)")
    print(f"deepest targets queue: {result['deepest']} tasks")
    print(
        f"repair re-queues: {sum(requeued.values())} in all, most for one target "
        f"{max(requeued.values(), default=0)}, "
        f"{sum(requeued.values()) / targets / periods:.4f} per target per lease period"
    )
    per_target = [delivered[t] for t in delivered]
    print(
        f"run_target deliveries per target: mean {sum(per_target) / targets:.2f}, "
        f"most {max(per_target, default=0)} ({len(per_target)} targets seen)"
    )
    print(f"update_build deliveries per build: {updates / args.builds:.2f}")


if __name__ == "__main__":
    sys.exit(main())
