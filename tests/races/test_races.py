"""The foundation's race cases, each repeated over many builds at once."""

import threading
from collections import Counter

import pytest
from celery import current_app
from werkzeug import Response

from builds.models import BuildMessage, BuildTarget, StatusEvent
from tests.races.conftest import start_builds, wait_for_targets, wait_until_complete

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]

ROUNDS = 20


def external_ci_step(httpserver, handler) -> dict:
    """An HTTP step that waits for a message, calling ``handler`` as the outside system."""
    httpserver.expect_request("/run").respond_with_handler(handler)
    return {
        "key": "ci",
        "step_type": "http",
        "wait_for_message": True,
        "config": {"uri": httpserver.url_for("/run") + "?target=${target.phid}"},
    }


def assert_each_target_settled_once(builds) -> None:
    settled = Counter(
        StatusEvent.objects.filter(
            target__build__in=builds, to_status__in=BuildTarget.COMPLETE
        ).values_list("target_id", flat=True)
    )
    assert settled and set(settled.values()) == {1}


def test_a_pass_sent_before_the_target_waits_is_not_lost(
    celery_workers, sender, httpserver, buildable
):
    """The outside system sends ``pass`` while Harbor's HTTP request is still open, and
    only then answers it: the message arrives while the target is ``building``."""

    def external_ci(request):
        sender.send(request.args["target"], "pass", unit=[{"name": "t", "result": "pass"}])
        return Response("accepted")

    builds = start_builds([external_ci_step(httpserver, external_ci)], ROUNDS, buildable)
    statuses = wait_until_complete(builds)
    assert set(statuses.values()) == {"passed"}
    early = StatusEvent.objects.filter(to_status="waiting").count()
    assert early == ROUNDS
    assert not BuildMessage.objects.filter(is_consumed=False).exists()
    assert_each_target_settled_once(builds)


def test_messages_to_two_parallel_targets_in_reverse_order_both_count(
    celery_workers, sender, buildable
):
    steps = [
        {"key": "a", "step_type": "sleep", "wait_for_message": True},
        {"key": "b", "step_type": "sleep", "wait_for_message": True},
    ]
    builds = start_builds(steps, ROUNDS, buildable)
    for build in builds:
        a, b = wait_for_targets(build, 2)
        sender.send(b.phid, "pass")
        sender.send(a.phid, "pass")
    statuses = wait_until_complete(builds)
    assert set(statuses.values()) == {"passed"}
    assert not BuildMessage.objects.filter(is_consumed=False).exists()
    assert_each_target_settled_once(builds)


def test_duplicate_update_build_tasks_change_nothing(celery_workers, sender, buildable):
    steps = [{"key": "ci", "step_type": "sleep", "wait_for_message": True}]
    builds = start_builds(steps, ROUNDS, buildable)
    for build in builds:
        (target,) = wait_for_targets(build, 1, status="waiting")
        sender.send(target.phid, "pass")
        for _ in range(5):
            current_app.send_task("workers.tasks.update_build", args=(build.pk,))
    statuses = wait_until_complete(builds)
    assert set(statuses.values()) == {"passed"}
    assert BuildTarget.objects.filter(build__in=builds).count() == ROUNDS
    assert_each_target_settled_once(builds)
    assert (
        StatusEvent.objects.filter(build__in=builds, to_status="passed", target=None).count()
        == ROUNDS
    )


def test_duplicate_run_target_deliveries_run_the_step_once(
    celery_workers, sender, httpserver, buildable
):
    hits = Counter()
    lock = threading.Lock()

    def external_ci(request):
        with lock:
            hits[request.args["target"]] += 1
        return Response("accepted")

    builds = start_builds([external_ci_step(httpserver, external_ci)], ROUNDS, buildable)
    for build in builds:
        (target,) = wait_for_targets(build, 1)
        for _ in range(3):
            current_app.send_task("workers.tasks.run_target", args=(target.pk,))
    for build in builds:
        (target,) = wait_for_targets(build, 1, status="waiting")
        sender.send(target.phid, "pass")
    statuses = wait_until_complete(builds)
    assert set(statuses.values()) == {"passed"}
    assert sorted(hits.values()) == [1] * ROUNDS
    assert set(BuildTarget.objects.filter(build__in=builds).values_list("attempt", flat=True)) == {
        1
    }
