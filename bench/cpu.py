"""CPU time per message, by process, for Harbor's decision path and the ceiling's.

    .venv/bin/python bench/cpu.py [--count 600] [--clients 8] [--builds 200]

Starts the bench's processes (bench/harness.py), sends ``count`` pass messages (each to its
own waiting build) from closed-loop clients, and the same count to the ceiling's
lock-and-update endpoint, and prints the CPU milliseconds each kind of process spent per
message (utime + stime from /proc, summed over the processes of a kind): gunicorn workers,
Celery main and pool processes, PostgreSQL backends, Redis, and the sending client (which
also starts the builds). Then the same per build for ``builds`` builds of the three-step
plan started at once, and per seven empty tasks (the builds/s ceiling's unit). On a machine
whose cores are all busy, these shares say where a decision's or a build's cost lies.
"""

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_kind(cluster) -> Counter:
    """CPU seconds so far of every process on the machine, summed by kind."""
    kinds = {os.getpid(): "client (python)"}
    for name, process in cluster.processes.items():
        kinds[process.popen.pid] = f"{name} main"
        for child in process.children():
            kinds[child] = f"{name} pool/worker"
    totals: Counter = Counter()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        seconds = (int(fields[11]) + int(fields[12])) / TICKS
        kind = kinds.get(int(entry.name)) or _other_kind(comm)
        totals[kind] += seconds
    return totals


def _other_kind(comm: str) -> str:
    if comm.startswith("postgres"):
        return "postgresql"
    if comm.startswith("redis"):
        return "redis"
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--builds", type=int, default=200)
    args = parser.parse_args()
    bench_world = harness.fresh_world()
    from bench import figures, load  # noqa: PLC0415 (needs Django set up)

    harbor_jobs = [
        ("/api/v1/sendmessage", {"receiver": w.target_phid, "type": "pass"}, w.key)
        for w in bench_world.waiting_builds(args.count, tag="cpu")
    ]
    ceiling_jobs = [
        ("/bench/ceiling/message", {"counter": c, "type": "pass"}, f"c:{c}")
        for c in bench_world.counters(args.count)
    ]
    cluster = harness.Cluster().start()
    listener = load.DecisionListener()
    try:
        for name, jobs, token in (
            ("ceiling", ceiling_jobs, ""),
            ("harbor", harbor_jobs, bench_world.token),
        ):
            harness.wait_quiet()
            before = cpu_by_kind(cluster)
            result = load.send_and_time(listener, jobs, None, args.clients, token)
            harness.wait_quiet(settle=0.5)
            n = len(result.values) or 1
            title = f"{name}: {n} decisions, {result.decision_rate:.0f}/s; CPU ms per message"
            _print_spent(title, cpu_by_kind(cluster) - before, n)
        harness.wait_quiet()
        before = cpu_by_kind(cluster)
        ids = bench_world.start_three_step_builds(args.builds)
        listener.wait_for([f"b:{i}" for i in ids], 60)
        harness.wait_quiet(settle=0.5)
        _print_spent("three-step builds: CPU ms per build", cpu_by_kind(cluster) - before, len(ids))
        before = cpu_by_kind(cluster)
        tasks, _ = figures.run_empty_tasks(args.builds * 7)
        harness.wait_quiet(settle=0.5)
        _print_spent("empty tasks: CPU ms per seven", cpu_by_kind(cluster) - before, tasks / 7)
    finally:
        listener.close()
        cluster.stop()
    return 0


def _print_spent(title: str, spent: Counter, n: float) -> None:
    print(f"\n{title}:")
    for kind, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {kind:28} {1000 * seconds / n:7.2f}")
    print(f"  {'total':28} {1000 * sum(spent.values()) / n:7.2f}")


if __name__ == "__main__":
    sys.exit(main())
