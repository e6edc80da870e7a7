"""``GET /metrics``: Prometheus' text format behind HARBOR_METRICS_TOKEN, and counters that
move where the event happens (a message answered, an engine pass, a build completed, a repair)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from builds import engine, locks
from builds.engine import dispatch
from builds.models import Build, BuildTarget
from forges import outbox
from forges.models import OutboundDelivery
from forges.posting import PostResult
from tests.api.conftest import make_build, make_target
from workers.tasks import call_cancel_hook, repair_builds, run_target

URL = "/metrics"
TOKEN = "metrics-token-for-tests"


@pytest.fixture
def metrics_token(settings) -> str:
    settings.HARBOR_METRICS_TOKEN = TOKEN
    return TOKEN


def sample(anonymous_client, name: str, **labels) -> float:
    """The value of series ``name{labels}`` as /metrics shows it now (0 when absent)."""
    response = anonymous_client.get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in response.content.decode().splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match and match[1] == name and ",".join(sorted((match[2] or "").split(","))) == wanted:
            return float(match[3])
    return 0.0


def test_it_answers_404_when_no_metrics_token_is_set(anonymous_client, settings):
    settings.HARBOR_METRICS_TOKEN = ""
    response = anonymous_client.get(URL, HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", TOKEN])
def test_it_refuses_a_request_without_the_metrics_token(anonymous_client, metrics_token, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = anonymous_client.get(URL, **extra)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert b"harbor_" not in response.content


def test_it_serves_prometheus_text_with_the_token(db, anonymous_client, metrics_token):
    response = anonymous_client.get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for name in (
        "harbor_builds_started_total",
        "harbor_builds_completed_total",
        "harbor_targets_completed_total",
        "harbor_messages_received_total",
        "harbor_message_decision_seconds",
        "harbor_target_queue_wait_seconds",
        "harbor_engine_pass_seconds",
        "harbor_repair_actions_total",
        "harbor_deliveries_total",
        "harbor_builds",
        "harbor_targets",
    ):
        assert f"# TYPE {name} " in text


def test_it_counts_a_message_by_type_and_reply(
    client, anonymous_client, metrics_token, waiting_target, django_capture_on_commit_callbacks
):
    labels = {"type": "pass", "reply": "accepted"}
    duplicate = {"type": "pass", "reply": "duplicate"}
    before = sample(anonymous_client, "harbor_messages_received_total", **labels)
    body = {"receiver": waiting_target.phid, "type": "pass", "idempotency_key": "k1"}
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/v1/sendmessage", body, format="json").status_code == 202
    assert sample(anonymous_client, "harbor_messages_received_total", **labels) == before + 1
    before_duplicate = sample(anonymous_client, "harbor_messages_received_total", **duplicate)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/v1/sendmessage", body, format="json")
    after_duplicate = sample(anonymous_client, "harbor_messages_received_total", **duplicate)
    assert after_duplicate == before_duplicate + 1


def test_it_counts_a_refused_message(client, anonymous_client, metrics_token, waiting_target):
    BuildTarget.objects.filter(pk=waiting_target.pk).update(status="passed")
    labels = {"type": "fail", "reply": "refused"}
    before = sample(anonymous_client, "harbor_messages_received_total", **labels)
    body = {"receiver": waiting_target.phid, "type": "fail"}
    assert client.post("/api/v1/sendmessage", body, format="json").status_code == 409
    assert sample(anonymous_client, "harbor_messages_received_total", **labels) == before + 1


def test_it_counts_an_engine_pass_and_the_build_it_completed(
    anonymous_client, metrics_token, waiting_target, django_capture_on_commit_callbacks
):
    build = waiting_target.build
    completed = {"plan_id": str(build.plan_id), "status": "passed"}
    passes = sample(anonymous_client, "harbor_engine_pass_seconds_count")
    before = sample(anonymous_client, "harbor_builds_completed_total", **completed)
    with django_capture_on_commit_callbacks(execute=True):
        # Its receiving process runs the pass that completes the build.
        engine.receive_message(waiting_target.phid, "pass", author=build.initiator)
    assert Build.objects.get(pk=build.pk).status == "passed"
    assert sample(anonymous_client, "harbor_engine_pass_seconds_count") == passes + 1
    assert sample(anonymous_client, "harbor_builds_completed_total", **completed) == before + 1


def test_it_counts_the_follow_ups_the_repair_task_sends(
    anonymous_client, metrics_token, settings, monkeypatch, waiting_plan, buildable
):
    settings.HARBOR_REPAIR_BOUND = 0
    monkeypatch.setattr(dispatch, "run_targets", lambda ids, countdown=0, reclaim=False: None)
    build = make_build(waiting_plan, buildable)
    make_target(build, status="pending", wait_for_message=False)  # never queued: lost
    before = sample(anonymous_client, "harbor_repair_actions_total", kind="run_target")
    repair_builds()
    assert sample(anonymous_client, "harbor_repair_actions_total", kind="run_target") == before + 1


def test_it_counts_a_build_started_by_plan(
    anonymous_client, metrics_token, waiting_plan, buildable, django_capture_on_commit_callbacks
):
    labels = {"plan_id": str(waiting_plan.pk)}
    before = sample(anonymous_client, "harbor_builds_started_total", **labels)
    with django_capture_on_commit_callbacks(execute=False):
        engine.start_build(waiting_plan, buildable)
    # Counted after the commit only: the callbacks above were captured, not run.
    assert sample(anonymous_client, "harbor_builds_started_total", **labels) == before
    with django_capture_on_commit_callbacks(execute=True):
        engine.start_build(waiting_plan, buildable)
    assert sample(anonymous_client, "harbor_builds_started_total", **labels) == before + 1


def test_it_counts_the_target_a_verdict_settles_and_the_latency_of_its_decision(
    anonymous_client, metrics_token, waiting_target, django_capture_on_commit_callbacks
):
    build = waiting_target.build
    settled = {"step_type": "http", "status": "passed"}
    before = sample(anonymous_client, "harbor_targets_completed_total", **settled)
    decisions = sample(anonymous_client, "harbor_message_decision_seconds_count")
    latency = sample(anonymous_client, "harbor_message_decision_seconds_sum")
    with django_capture_on_commit_callbacks(execute=False):  # its pass is the one below
        engine.receive_message(waiting_target.phid, "pass", author=build.initiator)
    # Received a minute ago: the decision's latency runs from the message's receipt.
    build.messages.update(date_created=timezone.now() - timedelta(seconds=60))
    with django_capture_on_commit_callbacks(execute=True):
        engine.update_build(build.pk)
    assert sample(anonymous_client, "harbor_targets_completed_total", **settled) == before + 1
    assert sample(anonymous_client, "harbor_message_decision_seconds_count") == decisions + 1
    assert sample(anonymous_client, "harbor_message_decision_seconds_sum") >= latency + 60


def test_it_counts_how_long_a_run_target_waited_in_its_queue(
    anonymous_client, metrics_token, waiting_plan, buildable
):
    build = make_build(waiting_plan, buildable)
    target = make_target(build, status="passed")  # nothing to run: the task only starts
    waits = sample(anonymous_client, "harbor_target_queue_wait_seconds_count")
    waited = sample(anonymous_client, "harbor_target_queue_wait_seconds_sum")
    locks.mark_targets_queued([target.pk], countdown=-30)  # due 30 s ago
    run_target(target.pk)
    assert sample(anonymous_client, "harbor_target_queue_wait_seconds_count") == waits + 1
    assert sample(anonymous_client, "harbor_target_queue_wait_seconds_sum") >= waited + 30
    assert not locks.targets_queued_due([target.pk])


def test_it_counts_commit_status_deliveries_by_result(
    anonymous_client, metrics_token, waiting_plan, buildable
):
    build = make_build(waiting_plan, buildable)
    row = OutboundDelivery.objects.create(
        build=build,
        forge="github",
        repository="o/r",
        commit="a" * 40,
        build_status="building",
        state="pending",
        payload={},
        next_attempt_at=timezone.now(),
    )
    series = "harbor_deliveries_total"
    retry = sample(anonymous_client, series, kind="commit_status", result="retry")
    delivered = sample(anonymous_client, series, kind="commit_status", result="delivered")
    outbox.record_attempt(outbox.claim(row.pk), PostResult(502, "bad gateway", True))
    assert sample(anonymous_client, series, kind="commit_status", result="retry") == retry + 1
    OutboundDelivery.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    outbox.record_attempt(outbox.claim(row.pk), PostResult(201, "", False))
    after = sample(anonymous_client, series, kind="commit_status", result="delivered")
    assert after == delivered + 1


def test_gauges_count_builds_and_underway_targets_by_status_when_scraped(
    anonymous_client, metrics_token, waiting_plan, buildable
):
    pending = sample(anonymous_client, "harbor_builds", status="pending")
    building = sample(anonymous_client, "harbor_targets", status="building")
    build = make_build(waiting_plan, buildable, status="pending")
    make_target(build, status="building")
    assert sample(anonymous_client, "harbor_builds", status="pending") == pending + 1
    assert sample(anonymous_client, "harbor_targets", status="building") == building + 1


def test_it_counts_a_cancel_hook_delivered(
    anonymous_client, metrics_token, waiting_plan, buildable, httpserver
):
    httpserver.expect_request("/cancel").respond_with_data("ok")
    build = make_build(waiting_plan, buildable)
    hook = {"on_abort": {"url": httpserver.url_for("/cancel")}}
    target = make_target(build, status="aborted", config=hook)
    labels = {"kind": "cancel_hook", "result": "delivered"}
    before = sample(anonymous_client, "harbor_deliveries_total", **labels)
    call_cancel_hook(target.pk)
    assert sample(anonymous_client, "harbor_deliveries_total", **labels) == before + 1


def test_a_scrape_over_plain_http_is_answered_where_pages_are_redirected_to_https(
    anonymous_client, metrics_token, settings, db
):
    """With HARBOR_HTTPS, a worker host's small web is scraped at its own address over plain
    HTTP: /metrics answers there, while a page is still sent to HTTPS."""
    settings.SECURE_SSL_REDIRECT = True
    scraped = anonymous_client.get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert scraped.status_code == 200
    assert anonymous_client.get("/plans/").status_code == 301
