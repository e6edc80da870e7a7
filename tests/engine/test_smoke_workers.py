import os

import pytest
from celery import Celery
from django.conf import settings

from builds import engine
from builds.models import Build, BuildTarget
from tests.conftest import make_plan
from tests.workers import WorkerProcess, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]


def test_a_waiting_build_passes_after_its_pass_message(celery_workers, buildable):
    plan = make_plan("wait", [{"key": "ci", "step_type": "sleep", "wait_for_message": True}])
    build = engine.start_build(plan, buildable)
    target = wait_for(lambda: BuildTarget.objects.filter(build=build, status="waiting").first())
    engine.receive_message(target.phid, "pass")
    wait_for(lambda: Build.objects.get(pk=build.pk).status == "passed")


def test_a_worker_started_without_queues_runs_the_engine_and_the_steps(buildable, monkeypatch):
    """``celery -A harbor worker`` with no ``-Q``, as a newcomer starts it, on queues of
    its own (the session's workers must not help): the build's update and its step both
    reach it, and the build passes."""
    monkeypatch.setattr("builds.engine.dispatch.request_update", lambda build_id: None)
    prefix = f"harbornoq{os.getpid()}"
    worker = WorkerProcess(concurrency=1, queues=None, HARBOR_QUEUE_PREFIX=prefix).start()
    app = Celery(broker=settings.REDIS_URL, set_as_current=False)
    try:
        build = engine.start_build(
            make_plan("no-q", [{"key": "a", "step_type": "sleep"}]), buildable
        )
        app.send_task("workers.tasks.update_build", args=(build.pk,), queue=f"{prefix}.engine")
        wait_for(lambda: Build.objects.get(pk=build.pk).status == "passed", timeout=30)
    finally:
        app.close()
        worker.stop()
