"""Time one ``sendmessage`` carrying N unit results (default 3,000), in-process.

Usage: ``.venv/bin/python bench/sendmessage_units.py [N] [REPEATS]``. Creates a throwaway
test database (tests.settings), a waiting target, then posts the message REPEATS times
(each to a new target) through Django's test client, which runs the whole REST path:
authentication, the capped body read, the strict JSON parser, validation, and the engine's
one transaction. Prints the median and best wall time, and the time spent in the database.
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from accounts.models import ApiToken, User  # noqa: E402
from builds.models import Build, Buildable, BuildTarget  # noqa: E402
from tests.conftest import make_plan  # noqa: E402


def waiting_target(plan, buildable) -> BuildTarget:
    build = Build.objects.create(
        plan=plan, buildable=buildable, status="building", generation=1, plan_snapshot=[]
    )
    return BuildTarget.objects.create(
        build=build,
        step_key="ci",
        generation=1,
        name="ci",
        step_type="http",
        status="waiting",
        wait_for_message=True,
    )


def main(count: int, repeats: int) -> None:
    user = User.objects.create_user(username="bench")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiToken.issue(user)[1]}")
    plan = make_plan("bench", [{"key": "ci", "step_type": "http", "wait_for_message": True}])
    buildable = Buildable.objects.create(repository="bench", commit="a" * 40)
    units = [
        {
            "name": f"tests/test_module_{i // 50}.py::test_case_{i}",
            "result": "pass",
            "namespace": "bench",
            "engine": "pytest",
            "duration": 0.001 * i,
        }
        for i in range(count)
    ]
    walls, db_times = [], []
    for _ in range(repeats):
        target = waiting_target(plan, buildable)
        body = json.dumps({"receiver": target.phid, "type": "pass", "unit": units})
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            response = client.post("/api/v1/sendmessage", body, content_type="application/json")
            walls.append(time.perf_counter() - start)
        assert response.status_code == 202, response.content
        db_times.append(sum(float(q["time"]) for q in queries.captured_queries))
    print(
        f"{count} unit results ({len(body) / 1e6:.2f} MB body), {repeats} runs: "
        f"median {statistics.median(walls) * 1000:.0f} ms, best {min(walls) * 1000:.0f} ms, "
        f"of which database {statistics.median(db_times) * 1000:.0f} ms (median)"
    )


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        main(n, runs)
    finally:
        teardown_databases(old_config, verbosity=0)
