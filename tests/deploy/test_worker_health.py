"""Worker health: a real Celery worker's heartbeat, read by ``manage.py workerhealth``, which
the compose file and the systemd examples use as their health check."""

import subprocess
import sys

import pytest
from django.conf import settings

from tests.workers import ROOT, WorkerProcess, wait_for, worker_env
from workers.heartbeat import heartbeats

pytestmark = pytest.mark.workers


def workerhealth(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``manage.py workerhealth`` as an operator's health check would: its own process."""
    command = [sys.executable, "manage.py", "workerhealth", *args]
    return subprocess.run(command, cwd=ROOT, env=worker_env(**env), capture_output=True, text=True)


@pytest.mark.django_db(transaction=True)
def test_a_running_worker_is_healthy_and_a_killed_one_is_not_within_three_beats():
    # Queues of this test's own, which the run's other workers (the session's) never serve.
    prefix = f"{settings.HARBOR_QUEUE_PREFIX}health"
    worker = WorkerProcess(
        concurrency=1, queues="engine", HARBOR_WORKER_HEARTBEAT="1", HARBOR_QUEUE_PREFIX=prefix
    ).start()

    def health(*args: str) -> subprocess.CompletedProcess:
        return workerhealth(*args, HARBOR_QUEUE_PREFIX=prefix)

    try:
        wait_for(lambda: health("--name", worker.name).returncode == 0, timeout=15)
        served = health("--queue", f"{prefix}.engine")
        assert served.returncode == 0, served.stderr
        assert f"{worker.name}: alive" in served.stdout
        targets = health("--queue", f"{prefix}.targets")
        assert targets.returncode == 1
        assert "no live worker serves" in targets.stderr
        worker.kill()  # SIGKILL: no goodbye, the heartbeat must lapse on its own
        wait_for(lambda: health("--name", worker.name).returncode == 1, timeout=10)
    finally:
        worker.stop()
    result = health("--name", worker.name)
    assert f"worker {worker.name} has no live heartbeat" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_a_worker_stopped_on_purpose_removes_its_heartbeat():
    worker = WorkerProcess(concurrency=1, queues="targets", HARBOR_WORKER_HEARTBEAT="1").start()
    wait_for(lambda: any(beat.name == worker.name for beat in heartbeats()), timeout=15)
    worker.stop()
    assert not any(beat.name == worker.name for beat in heartbeats())


def test_with_no_worker_at_all_the_check_fails(db):
    # A Harbor of its own (its own prefix), which no worker of this test run serves.
    result = workerhealth(HARBOR_QUEUE_PREFIX=f"{settings.HARBOR_QUEUE_PREFIX}x")
    assert result.returncode == 1 and "no live worker" in result.stderr
