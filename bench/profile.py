"""Profile Harbor's hot path under load with py-spy: the functions a process spends its time in.

    .venv/bin/python bench/profile.py [--role web|engine|targets] [--seconds 8] [--gil]
                                      [--type work|pass] [--endpoint sendmessage|ceiling]
                                      [--svg FILE]

Starts the bench's processes (bench/harness.py), loads them with wrk posting sendmessage
(``work`` to 100 waiting targets, or ``pass`` to distinct waiting targets) or, for the
targets role, with builds of the three-step plan started back to back, records the role's
processes with ``py-spy record`` (the gunicorn workers, or a Celery worker's pool
processes) and prints the functions with the most samples, inclusive and self. Needs py-spy
(pinned in the test extras) and permission to ptrace the processes it started.
"""

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402

PY_SPY = Path(sys.executable).with_name("py-spy")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("web", "engine", "targets"), default="web")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--type", choices=("work", "pass"), default="work")
    parser.add_argument("--endpoint", choices=("sendmessage", "ceiling"), default="sendmessage")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--svg", help="also write a flame graph here")
    parser.add_argument(
        "--gil",
        action="store_true",
        help="sample only while Python holds the GIL: its own CPU, not waits on the database",
    )
    args = parser.parse_args()

    bench_world = harness.fresh_world()
    from bench import load  # noqa: PLC0415 (needs Django set up)

    if args.endpoint == "ceiling":
        path, token = "/bench/ceiling/message", ""
        bodies = [{"counter": c, "type": "work"} for c in bench_world.counters(100)]
    else:
        path, token = "/api/v1/sendmessage", bench_world.token
        count = 100 if args.type == "work" else int(args.seconds * 400)
        bodies = [
            {"receiver": w.target_phid, "type": args.type}
            for w in bench_world.waiting_builds(count, tag="profile")
        ]
    cluster = harness.Cluster().start()
    try:
        process = cluster.processes[args.role]
        pids = process.children()
        raw = Path(tempfile.mkdtemp(prefix="harbor-profile-"))
        spies = [_spy(pid, raw / f"{pid}.txt", args.seconds, args.gil) for pid in pids]
        if args.role == "targets":
            builds = _start_builds_for(bench_world, args.seconds)
            for spy in spies:
                spy.wait()
            print(f"started {builds} three-step builds")
        else:
            result = load.wrk(path, bodies, args.clients, args.seconds, token=token)
            for spy in spies:
                spy.wait()
            print(
                f"wrk: {result.rate:.0f} req/s, p50 {result.p50_ms:.1f} ms, {result.errors} errors"
            )
        _report([raw / f"{pid}.txt" for pid in pids], args.top)
        if args.svg:
            stacks = "".join((raw / f"{pid}.txt").read_text() for pid in pids)
            folded = raw / "all.txt"
            folded.write_text(stacks)
            print(f"raw stacks in {folded} (flamegraph.pl or speedscope can read them)")
    finally:
        cluster.stop()
    return 0


def _start_builds_for(world, seconds: float) -> int:
    """Start three-step builds in batches of 20 for ``seconds``; how many were started."""
    started, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        started += len(world.start_three_step_builds(20))
    return started


def _spy(pid: int, output: Path, seconds: float, gil: bool) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(PY_SPY),
            "record",
            "-p",
            str(pid),
            "-d",
            str(int(seconds)),
            "-r",
            "200",
            "--format",
            "raw",
            "-o",
            str(output),
            "--nonblocking",
            *(["--gil"] if gil else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _report(files: list[Path], top: int) -> None:
    """Print the frames with the most inclusive and self samples (py-spy's raw format:
    ``frame;frame;… count`` per line, outermost first)."""
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    total = 0
    for file in files:
        if not file.exists():
            continue
        for line in file.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = [_short(f) for f in stack.split(";")]
            n = int(count)
            total += n
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    print(f"{total} samples")
    print("--- inclusive ---")
    for frame, n in inclusive.most_common(top):
        print(f"{100 * n / total:5.1f}%  {frame}")
    print("--- self ---")
    for frame, n in own.most_common(top):
        print(f"{100 * n / total:5.1f}%  {frame}")


def _short(frame: str) -> str:
    # "function (path/to/file.py:123)" → "function (file.py … package)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


if __name__ == "__main__":
    sys.exit(main())
