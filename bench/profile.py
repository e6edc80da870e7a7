"""Profile Harbor's hot path under load with py-spy: the functions a process spends its time in.

    .venv/bin/python bench/profile.py [--role web|engine|targets] [--seconds 8] [--gil]
                                      [--type work|pass] [--endpoint sendmessage|ceiling]
                                      [--layers] [--svg FILE]

Starts the bench's processes (bench/harness.py), loads them with wrk posting sendmessage
(``work`` to 100 waiting targets, or ``pass`` to distinct waiting targets) or, for the
targets role, with builds of the three-step plan started back to back, records the role's
processes with ``py-spy record`` (the gunicorn workers, or a Celery worker's pool
processes) and prints the functions with the most samples, inclusive and self; with
``--layers``, also each layer's share of the samples (the database driver, the ORM, HTTP and
DRF, Redis, Celery, Harbor's own code) and the ORM's share by the Harbor function that called
it. Needs py-spy (pinned in the test extras) and permission to ptrace the processes it
started.
"""

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402

PY_SPY = Path(sys.executable).with_name("py-spy")
HARBOR_PACKAGES = ("builds/", "messages_api/", "workers/", "accounts/", "forges/", "harbor/")


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
    parser.add_argument(
        "--layers", action="store_true", help="also print the samples' shares by layer"
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
        files = [raw / f"{pid}.txt" for pid in pids]
        _report(files, args.top)
        if args.layers:
            _report_layers(files, args.top)
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
    for stack, n in _samples(files):
        frames = [_short(f) for f in stack]
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


# Where a sample's time goes: the innermost frame of the stack whose file's path (as py-spy
# prints it: from the outermost package folder, e.g. ``django/db/models/query.py``) starts
# with one of these names its layer, so the standard library or ``django.utils`` called from
# the ORM counts as the ORM's. Django's contrib apps are HTTP's but for the PostgreSQL
# expressions, which the ORM compiles (a frame is matched against every layer in this order).
DRIVER = "database driver: Django's backend and psycopg2"
LAYERS = {
    DRIVER: ("django/db/backends/", "psycopg2/"),
    "ORM: build statements, make instances": (
        "django/db/models/",
        "django/db/transaction",
        "django/contrib/postgres/",
    ),
    "Redis client": ("redis/",),
    "Celery and kombu": ("celery/", "kombu/", "billiard/"),
    "HTTP, middleware and DRF": (
        "rest_framework/",
        "django/core/handlers/",
        "django/middleware/",
        "django/contrib/",
        "django/http/",
        "django/urls/",
        "django/views/",
        "whitenoise/",
        "gunicorn/",
    ),
    "Harbor's own code": HARBOR_PACKAGES,
    "the ceiling's own code": ("bench/",),
}
# The ORM fetches rows through the driver's methods wrapped by ``DatabaseErrorWrapper``
# (``django/db/utils.py``, whose other frames, such as the router's, are the ORM's): the
# wrapper's frames are the driver's.
DRIVER_WRAPPER = "DatabaseErrorWrapper."


def _layer_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        if frame.startswith(DRIVER_WRAPPER):
            return DRIVER
        for layer, paths in LAYERS.items():
            if _path(frame).startswith(paths):
                return layer
    return "other (standard library, …)"


def _path(frame: str) -> str:
    return frame.partition(" (")[2]


def _report_layers(files: list[Path], top: int) -> None:
    """Print each layer's share of the samples, then the ORM's share by the innermost
    Harbor function on the stack (the call site whose statements the ORM was building)."""
    layers: collections.Counter = collections.Counter()
    orm_callers: collections.Counter = collections.Counter()
    total = 0
    for stack, n in _samples(files):
        total += n
        layer = _layer_of(stack)
        layers[layer] += n
        if layer.startswith("ORM"):
            harbor = [f for f in stack if _path(f).startswith(HARBOR_PACKAGES)]
            orm_callers[_short(harbor[-1]) if harbor else "(no Harbor frame)"] += n
    print("--- by layer ---")
    for layer, n in layers.most_common():
        print(f"{100 * n / total:5.1f}%  {layer}")
    print("--- the ORM, by the Harbor function calling it ---")
    for caller, n in orm_callers.most_common(top):
        print(f"{100 * n / total:5.1f}%  {caller}")


def _samples(files: list[Path]) -> Iterator[tuple[list[str], int]]:
    """``(frames, count)`` of each line of py-spy's raw files, outermost frame first."""
    for file in files:
        if file.exists():
            for line in file.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                yield stack.split(";"), int(count)


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
