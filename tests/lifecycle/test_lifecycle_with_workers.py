"""Commands, cancel hooks and wait timeouts end to end: real Celery workers, the REST API
and a real local HTTP server standing in for the outside system."""

import threading
from io import StringIO

import pytest
from celery import current_app
from django.core.management import call_command
from rest_framework.test import APIClient
from werkzeug import Response

from builds import engine
from builds.models import Build, Buildable, BuildLog, BuildTarget
from tests.conftest import make_plan
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]


def start(steps, buildable) -> Build:
    return engine.start_build(make_plan(f"plan-{id(steps)}", steps), buildable)


def target_of(build: Build, status: str) -> BuildTarget:
    return wait_for(
        lambda: BuildTarget.objects.filter(build=build, status=status).first(),
        message=f"no {status} target in build {build.pk}",
    )


def status_of(build: Build) -> str:
    return Build.objects.get(pk=build.pk).status


def test_a_cancel_hook_is_retried_until_the_outside_system_answers(
    celery_workers, httpserver, buildable
):
    answers = iter([500, 503, 200])
    lock = threading.Lock()

    def outside_system(request):
        with lock:
            return Response("", status=next(answers))

    httpserver.expect_request("/cancel").respond_with_handler(outside_system)
    step = {
        "key": "ci",
        "step_type": "sleep",
        "wait_for_message": True,
        "config": {"on_abort": {"url": httpserver.url_for("/cancel") + "?t=${target.phid}"}},
    }
    build = start([step], buildable)
    target = target_of(build, "waiting")
    engine.receive_message(build.phid, "abort")
    wait_for(lambda: status_of(build) == "aborted")
    attempts = wait_for(
        lambda: (
            [log.text for log in BuildLog.objects.filter(target=target, log_type="cancel-hook")]
            if BuildLog.objects.filter(target=target, log_type="cancel-hook").count() == 3
            else None
        ),
        timeout=30,
        message="the cancel hook was not attempted three times",
    )
    assert [line.split(":")[0] for line in attempts] == ["attempt 1", "attempt 2", "attempt 3"]
    assert "HTTP 500" in attempts[0] and "HTTP 200" in attempts[2]
    assert target.phid in attempts[0]


def test_an_abort_stops_a_running_step_within_seconds(celery_workers, buildable):
    build = start([{"key": "slow", "step_type": "sleep", "config": {"seconds": 120}}], buildable)
    target = target_of(build, "building")
    engine.receive_message(build.phid, "abort")
    wait_for(lambda: status_of(build) == "aborted")
    stopped = wait_for(
        lambda: BuildLog.objects.filter(target=target, log_type="aborted").first(),
        timeout=10,
        message="the running step did not stop",
    )
    assert "Step stopped" in stopped.text
    assert BuildTarget.objects.get(pk=target.pk).status == "aborted"


def test_restart_through_the_api_runs_the_step_again_as_run_2(celery_workers, buildable, api_token):
    build = start([{"key": "ci", "step_type": "sleep", "wait_for_message": True}], buildable)
    first = target_of(build, "waiting")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token}")
    response = client.post(
        f"/api/v1/builds/{build.pk}/commands", {"command": "restart"}, format="json"
    )
    assert response.status_code == 202, response.content
    second = wait_for(
        lambda: BuildTarget.objects.filter(build=build, generation=2, status="waiting").first()
    )
    assert BuildTarget.objects.get(pk=first.pk).status == "aborted"
    assert (
        client.post(
            "/api/v1/sendmessage", {"receiver": first.phid, "type": "pass"}, format="json"
        ).status_code
        == 409
    )
    engine.receive_message(second.phid, "pass")
    wait_for(lambda: status_of(build) == "passed")
    wait_for(lambda: Buildable.objects.get(pk=buildable.pk).status == "passed")


def test_pause_holds_messages_and_resume_applies_them(celery_workers, buildable):
    build = start([{"key": "ci", "step_type": "sleep", "wait_for_message": True}], buildable)
    target = target_of(build, "waiting")
    out = StringIO()
    call_command("buildcommand", str(build.pk), "pause", stdout=out)
    assert "Sent pause" in out.getvalue()
    wait_for(lambda: status_of(build) == "paused")
    engine.receive_message(target.phid, "pass")
    engine.update_build(build.pk)  # a pass here and now: it must hold the message
    assert BuildTarget.objects.get(pk=target.pk).status == "waiting"
    assert status_of(build) == "paused"
    call_command("buildcommand", build.phid, "resume", stdout=StringIO())
    wait_for(lambda: status_of(build) == "passed")


def test_the_periodic_check_times_out_a_wait(celery_workers, buildable):
    step = {
        "key": "ci",
        "step_type": "sleep",
        "wait_for_message": True,
        "config": {"wait_timeout": 0.5, "on_timeout": "pass"},
    }
    build = start([step], buildable)
    target_of(build, "waiting")

    def expired():
        current_app.send_task("workers.tasks.expire_waits")
        return status_of(build) == "passed"

    wait_for(expired, interval=0.5, message="the timed-out wait was not settled")


def test_wait_for_previous_builds_yields_its_worker_until_the_earlier_build_is_done(
    celery_workers,
):
    steps = [
        {"key": "queue", "step_type": "wait-for-previous-builds", "config": {"poll_seconds": 0.3}},
        {"key": "ci", "step_type": "sleep", "wait_for_message": True, "depends_on": ["queue"]},
    ]
    plan = make_plan("serial", steps)
    first, second = (
        engine.start_build(plan, engine.find_or_create_buildable("repo", "main", commit))
        for commit in ("1" * 40, "2" * 40)
    )
    first_ci = target_of(first, "waiting")
    queue = wait_for(
        lambda: BuildTarget.objects.filter(build=second, step_key="queue", attempt__gte=3).first(),
        message="the second build's wait did not yield and resume",
    )
    assert queue.status == "building"
    assert not BuildTarget.objects.filter(build=second, step_key="ci").exists()
    engine.receive_message(first_ci.phid, "pass")
    second_ci = target_of(second, "waiting")
    engine.receive_message(second_ci.phid, "pass")
    wait_for(lambda: status_of(second) == "passed")
    waits = BuildLog.objects.filter(target__build=second, log_type="wait")
    assert [log.text.split()[0] for log in waits] == ["Waiting", "No"]


def test_a_cancel_hook_log_masks_the_target_secret(celery_workers, httpserver, buildable):
    httpserver.expect_request("/cancel").respond_with_data("ok")
    step = {
        "key": "ci",
        "step_type": "sleep",
        "wait_for_message": True,
        "config": {"on_abort": {"url": httpserver.url_for("/cancel") + "?s=${target.secret}"}},
    }
    build = start([step], buildable)
    target = target_of(build, "waiting")
    engine.receive_message(build.phid, "abort")
    log = wait_for(lambda: BuildLog.objects.filter(target=target, log_type="cancel-hook").first())
    from builds.secrets import target_secret

    assert "HTTP 200" in log.text
    assert target_secret(target.phid) not in log.text + log.source
    assert "********" in log.text


def test_a_cancel_hook_is_not_sent_where_http_steps_may_not_go(settings):
    from workers.cancel_hooks import _request

    settings.HARBOR_HTTP_ALLOWED_URLS = ["https://ci.example.com:*"]
    ok, outcome = _request("POST", "http://127.0.0.1:9/cancel")
    assert not ok and outcome.startswith("not sent: Harbor may not reach http://127.0.0.1:9")
