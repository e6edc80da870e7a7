"""A capacity model from CPU per build, checked against the run it was measured on.

    .venv/bin/python bench/capacity.py [--builds 300] [--clients 4]

Runs Harbor's processes as ``bench/harness.py`` starts them (gunicorn with 2 workers, an
engine worker and a step worker with 2 prefork processes each: two engine and two step
worker processes), in a world of its own (database ``harbor_bench_capacity``, Redis
database 10, queues ``harborcapacity.*``, port 8393). It starts ``--builds`` builds at once
of the bench's waiting plan (one step that waits for a message, as a CI system's step
does); a sender posts each waiting target its ``pass`` through ``sendmessage`` from
``--clients`` threads, as the CI system would. When all have passed it prints:

- CPU milliseconds per build of each role (``bench/cpu.py``'s accounting: gunicorn, the
  engine worker, the step worker, PostgreSQL, Redis), and so how many builds per second,
  ``sendmessage`` calls per second and engine decisions (passes) per second one core of
  that role carries;
- the model's prediction for this machine (its cores ÷ the CPU per build of all roles)
  beside the builds per second measured in the same run;
- the cores each role needs for 1,000, 10,000 and 100,000 builds an hour of such builds.

PostgreSQL's share counts every ``postgres`` process of the machine: on a shared machine it
includes other databases' work, so read it as an upper bound.
"""

import argparse
import http.client
import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402
from bench.cpu import cpu_by_kind  # noqa: E402

ROLES = {
    "web": ("web main", "web pool/worker"),
    "engine worker": ("engine main", "engine pool/worker"),
    "step worker": ("targets main", "targets pool/worker"),
    "postgresql": ("postgresql",),
    "redis": ("redis",),
}


def run(world, builds: int, clients: int) -> float:
    """Start ``builds`` builds, answer each waiting target, wait until all passed; return
    the seconds from the first start to the last pass."""
    from bench import load  # noqa: PLC0415 (needs Django set up)
    from builds import engine  # noqa: PLC0415
    from builds.models import Build, BuildTarget  # noqa: PLC0415

    started = time.monotonic()
    ids = []
    for index in range(builds):
        buildable = engine.find_or_create_buildable("bench", commit=f"capacity-{index}")
        ids.append(engine.start_build(world.wait_plan, buildable).pk)
    answered: set[str] = set()
    local = threading.local()  # one connection per sender thread

    def send(phid: str) -> None:
        if not hasattr(local, "client"):
            local.client = load.Client(world.token)
        body = {"receiver": phid, "type": "pass", "idempotency_key": f"capacity-{phid}"}
        try:
            status, _ = local.client.post("/api/v1/sendmessage", body)
        except (http.client.HTTPException, OSError):
            status = 0
        if status not in (200, 202):
            answered.discard(phid)  # sent again at the next look (same idempotency key)

    with ThreadPoolExecutor(clients) as pool:
        while Build.objects.filter(pk__in=ids).exclude(status="passed").exists():
            waiting = BuildTarget.objects.filter(build_id__in=ids, status="waiting")
            for phid in waiting.values_list("phid", flat=True):
                if phid not in answered:
                    answered.add(phid)
                    pool.submit(send, phid)
            time.sleep(0.05)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    print(f"load average before: {harness.load_average()}  (cores: {os.cpu_count()})")
    harness.BENCH_DB = os.environ.get("HARBOR_CAPACITY_DB", "harbor_bench_capacity")
    harness.BENCH_REDIS_DB, harness.PREFIX, harness.PORT = 10, "harborcapacity", 8393
    world = harness.fresh_world()
    cluster = harness.Cluster().start()
    try:
        harness.wait_quiet()
        before = cpu_by_kind(cluster)
        seconds = run(world, args.builds, args.clients)
        harness.wait_quiet(settle=0.5)
        spent = cpu_by_kind(cluster) - before
        passes = len(
            re.findall(r"update_build\[[^\]]+\] received", cluster.processes["engine"].log_text())
        )
    finally:
        cluster.stop()
    report(args.builds, seconds, spent, passes)
    print(f"load average after: {harness.load_average()}")
    return 0


def report(builds: int, seconds: float, spent, passes: int) -> None:
    per_build = {
        role: 1000 * sum(spent[k] for k in kinds) / builds for role, kinds in ROLES.items()
    }
    total = sum(per_build.values())
    passes_per_build = passes / builds
    print(f"\n{builds} builds (one step waiting for a message), {passes_per_build:.2f} passes each")
    print(f"{'role':14} {'CPU ms/build':>12} {'builds/s/core':>13} {'per core':>28}")
    for role, ms in per_build.items():
        rate = 1000 / ms if ms else float("inf")
        extra = {
            "web": f"{rate:.0f} sendmessage/s",
            "engine worker": f"{rate * passes_per_build:.0f} decisions/s",
        }.get(role, "")
        print(f"{role:14} {ms:12.2f} {rate:13.1f} {extra:>28}")
    print(f"{'all roles':14} {total:12.2f} {1000 / total:13.1f}")
    cores = os.cpu_count() or 1
    predicted = cores * 1000 / total
    measured = builds / seconds
    got = total * builds / 1000 / seconds
    print(
        f"\nmodel for this machine ({cores} cores, all roles on them): {predicted:.1f} builds/s;"
        f" measured with 2 engine + 2 step worker processes: {measured:.1f} builds/s"
        f" ({measured / predicted:.2f} of the model)"
    )
    print(
        f"the roles got {got:.2f} of the {cores} cores on average during the run: the model"
        " is checked only when this is near the cores (a quiet machine)"
    )
    print("\ncores needed per role (CPU only, at 100 % busy):")
    print(f"{'builds/hour':>12} " + " ".join(f"{role:>14}" for role in per_build))
    for per_hour in (1_000, 10_000, 100_000):
        needs = [per_hour / 3600 * ms / 1000 for ms in per_build.values()]
        print(f"{per_hour:>12,} " + " ".join(f"{need:>14.2f}" for need in needs))


if __name__ == "__main__":
    sys.exit(main())
