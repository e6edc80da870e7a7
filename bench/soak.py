"""Soak run: the stress test of tests/races/test_stress.py, bigger.

    .venv/bin/python bench/soak.py [--builds 1000] [--timeout 900]

Runs that test under pytest (its own test database, real Celery workers, Redis, the live
REST API) with HARBOR_STRESS_BUILDS set, then prints builds, messages, lost, stuck and time.
Exits non-zero if any build is stuck or wrong or any message was lost.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the whole run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        env = dict(
            os.environ,
            HARBOR_STRESS_BUILDS=str(args.builds),
            HARBOR_STRESS_TIMEOUT=str(args.timeout),
            HARBOR_STRESS_REPORT=str(report),
        )
        command = [sys.executable, "-m", "pytest", "-q", "tests/races/test_stress.py"]
        status = subprocess.call(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        if not report.exists():
            print(f"soak: no report written (pytest exit status {status})", file=sys.stderr)
            return status or 1
        figures = json.loads(report.read_text())
    for name in (
        "builds",
        "messages",
        "accepted",
        "duplicates",
        "refused",
        "lost",
        "stuck",
        "wrong",
        "deadlocks",
        "seconds",
    ):
        print(f"{name:>10}: {figures[name]}")
    print(f"{'statuses':>10}: {figures['statuses']}")
    return status


if __name__ == "__main__":
    sys.exit(main())
