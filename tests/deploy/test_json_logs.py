"""HARBOR_LOG_FORMAT=json: one JSON object a line, with the ids of the build and build
target the line concerns, in a unit's log calls and in a real Celery worker's output."""

import io
import json
import logging
import subprocess
import sys

import pytest
from django.conf import settings

from builds.models import Build, BuildTarget
from harbor import logformat
from tests.conftest import make_plan
from tests.workers import ROOT, WorkerProcess, start_build_on_queues_of, wait_for, worker_env


@pytest.fixture
def json_log():
    """A logger writing JSON lines to a buffer; returns (logger, read) where read() gives
    the lines logged so far, parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.json_log")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logformat.use_json(logger)
    yield logger, lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_a_line_logged_inside_bind_carries_the_bound_ids(json_log):
    logger, read = json_log
    with logformat.bind(target_id=4), logformat.bind(build_id=3):
        logger.info("step %s ran", "ci")
    logger.info("outside")
    inside, outside = read()
    assert inside["message"] == "step ci ran" and inside["level"] == "INFO"
    assert (inside["build_id"], inside["target_id"]) == (3, 4)
    assert "build_id" not in outside and "target_id" not in outside


def test_a_lines_own_extra_ids_win_over_the_bound_ones(json_log):
    logger, read = json_log
    with logformat.bind(build_id=3):
        logger.warning("repair", extra={"build_id": 9})
    assert read()[0]["build_id"] == 9


def test_an_exception_is_written_inside_its_line(json_log):
    logger, read = json_log
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    (line,) = read()
    assert "ValueError: boom" in line["exception"]


def test_an_unknown_log_format_is_refused_at_start():
    env = worker_env(HARBOR_LOG_FORMAT="xml", DJANGO_SETTINGS_MODULE="harbor.settings")
    run = [sys.executable, "-c", "import django; django.setup()"]
    result = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "HARBOR_LOG_FORMAT must be 'text' or 'json'" in result.stderr


@pytest.mark.workers
@pytest.mark.django_db(transaction=True)
def test_a_worker_logs_json_lines_with_the_build_and_target_ids(buildable):
    # Queues of this test's own, so that no other worker of the run (the session's) takes
    # the build.
    prefix = f"{settings.HARBOR_QUEUE_PREFIX}json"
    worker = WorkerProcess(concurrency=1, HARBOR_LOG_FORMAT="json", HARBOR_QUEUE_PREFIX=prefix)
    worker.start()
    try:
        plan = make_plan("json-logs", [{"key": "nap", "step_type": "sleep"}])
        build = start_build_on_queues_of(prefix, plan, buildable)
        wait_for(lambda: Build.objects.get(pk=build.pk).status == "passed", timeout=60)
        target = BuildTarget.objects.get(build=build)
        wait_for(lambda: any("running step" in line for line in worker.output), timeout=10)
        logged = list(worker.output)  # what Celery prints itself on stopping is not a log line
    finally:
        worker.stop()
    ready = next(i for i, line in enumerate(logged) if " ready." in line)
    lines = [json.loads(line) for line in logged[ready:] if line.strip()]
    (running,) = [line for line in lines if "running step" in line["message"]]
    assert (running["build_id"], running["target_id"]) == (build.pk, target.pk)
    assert running["task"] == "workers.tasks.run_target"
    assert running["task_id"]
