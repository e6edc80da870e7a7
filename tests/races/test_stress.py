"""Stress: hundreds of builds, messages from many threads, several real worker processes.

Sized by ``HARBOR_STRESS_BUILDS`` (default 200) so bench/soak.py can run it bigger.
"""

import os
import re
import time

import pytest
from django.db import connection

from builds.models import BuildTarget
from tests.interleavings import monitor
from tests.races.stress import StressRun, write_report
from tests.workers import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]

BUILDS = int(os.environ.get("HARBOR_STRESS_BUILDS", "200"))


def deadlocks() -> int:
    """Deadlocks PostgreSQL has detected in the test database (pg_stat_database)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_hundreds_of_builds_reach_the_right_status_with_nothing_lost(
    celery_workers, monitored, sender, buildable
):
    extra = WorkerProcess(concurrency=2).start()  # a third worker process
    deadlocks_before = deadlocks()
    # The session's workers also served earlier tests (whose teardown TRUNCATE may have
    # deadlocked with them): only what they print from now on is this test's.
    output_before = {id(w): len(w.output) for w in celery_workers}
    try:
        run = StressRun(buildable, sender, BUILDS)
        result = run.run(timeout=float(os.environ.get("HARBOR_STRESS_TIMEOUT", "150")))
    finally:
        extra.stop()
    time.sleep(1.5)  # let the workers' backends flush their statistics (PostgreSQL 15)
    output = "".join(
        line for w in [*celery_workers, extra] for line in w.output[output_before.get(id(w), 0) :]
    )
    deadlock_retries = len(re.findall(r"deadlock detected", output))
    figures = {"deadlocks": deadlocks() - deadlocks_before, "deadlock_log_lines": deadlock_retries}
    write_report(result, figures)
    print(result.as_dict() | figures)
    assert (result.stuck, result.lost, result.wrong) == (0, 0, 0), result
    assert result.accepted >= sum(1 for _ in run.expected)  # every build got verdicts
    assert run.settled_more_than_once() == 0
    assert not monitor.violations(), monitor.violations()[:5]
    assert figures == {"deadlocks": 0, "deadlock_log_lines": 0}, figures
    # No target was claimed twice: every lease held for as long as its step ran.
    attempts = set(
        BuildTarget.objects.filter(build_id__in=run.expected).values_list("attempt", flat=True)
    )
    assert max(attempts) == 1, attempts
