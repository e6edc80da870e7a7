"""Notifications to a plan's webhooks: checked at import, written as outbox rows with the
change that causes them, delivered signed to a fake receiver (pytest-httpserver), retried,
and kept in order per (build, webhook)."""

import hashlib
import hmac
import json
import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from werkzeug import Request, Response

from builds import engine
from builds.egress import shown_origin
from builds.models import Build, StatusEvent
from builds.plans import PlanError, import_plan
from forges import outbox
from forges.models import OutboundDelivery
from forges.outbox import StreamBusy
from messages_api.shapes import build_shape
from tests.conftest import make_plan
from tests.engine.conftest import Driver, waiting_step

pytestmark = pytest.mark.django_db

SECRET = "notify-secret-7c1e"
ALL_EVENTS = [
    "build.started", "build.completed", "build.passed", "build.failed", "build.aborted",
    "build.error", "target.waiting", "target.failed", "target.stuck",
]  # fmt: skip


class Receiver:
    """A webhook receiver: records each call (headers, raw body) and answers with the next
    of ``answers`` (status codes, then 200 for ever)."""

    def __init__(self, httpserver):
        self.calls: list[dict] = []
        self.answers: list[tuple[int, dict]] = []
        httpserver.expect_request("/hook", method="POST").respond_with_handler(self)
        self.url = httpserver.url_for("/hook")

    def __call__(self, request: Request) -> Response:
        self.calls.append({"headers": dict(request.headers), "body": request.get_data()})
        status, headers = self.answers.pop(0) if self.answers else (200, {})
        return Response(json.dumps({"n": len(self.calls)}), status, headers)

    @property
    def events(self) -> list[str]:
        return [json.loads(call["body"])["event"] for call in self.calls]


@pytest.fixture(autouse=True)
def credentials(settings):
    settings.HARBOR_CREDENTIALS = {"hook": {"type": "bearer", "token": SECRET}}


@pytest.fixture
def receiver(httpserver) -> Receiver:
    return Receiver(httpserver)


def notified_build(buildable, receiver: Receiver, events=None, steps=None) -> Driver:
    webhook = {"url": receiver.url, "events": events or ALL_EVENTS, "secret": "hook"}
    plan = make_plan("notifying", steps or [waiting_step("ci")], notify=[webhook])
    from builds import engine

    return Driver(engine.start_build(plan, buildable))


def deliver_pending() -> None:
    """Deliver every row still owed, oldest first, as the workers would after a commit
    (these tests run in a transaction, so ``on_commit`` never fires)."""
    rows = OutboundDelivery.objects.filter(outcome="pending").order_by("pk")
    for pk in rows.values_list("pk", flat=True):
        outbox.deliver(pk)


def make_due(row: OutboundDelivery) -> None:
    earlier = timezone.now() - timedelta(seconds=1)
    OutboundDelivery.objects.filter(pk=row.pk).update(next_attempt_at=earlier, claimed_until=None)


def plan_with(notify) -> dict:
    return {"name": "n", "notify": notify, "steps": [{"key": "s", "type": "sleep"}]}


def test_import_stores_a_plans_webhooks():
    plan = import_plan(
        plan_with(
            [{"url": "https://chat.example.com/h", "events": ["build.failed"], "secret": "hook"}]
        )
    )
    assert plan.notify == [
        {"url": "https://chat.example.com/h", "events": ["build.failed"], "secret": "hook"}
    ]


def test_import_refuses_every_bad_webhook_with_where_it_is():
    with pytest.raises(PlanError) as refused:
        import_plan(
            plan_with(
                [
                    {
                        "url": "https://chat.example.com/h?token=x",
                        "events": ["build.done"],
                        "secret": "hook",
                        "retries": 3,
                    },
                    {"url": "ftp://files.example.com/", "events": [], "secret": "nope"},
                ]
            )  # fmt: skip
        )
    problems = refused.value.problems
    assert any(
        p.startswith("notify[0] (https://chat.example.com): unknown event 'build.done'")
        for p in problems
    )
    assert (
        "notify[0] (https://chat.example.com): unknown field(s) retries; known: url, events, secret"
        in problems
    )
    assert any(p.startswith("notify[1] (ftp://files.example.com): url 'ftp://") for p in problems)
    assert any(
        p.startswith("notify[1] (ftp://files.example.com): events must be") for p in problems
    )
    assert any("secret 'nope' must name a HARBOR_CREDENTIALS entry" in p for p in problems)
    assert not any("token=x" in p for p in problems)  # a URL's query may hold a secret
    assert not Build.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        7,
        "ftp://chat.example.com/h",
        "https://chat.example.com:x/h",
        "http://10.0.0.1\\.chat.example.com/h",
        "http://[::1/h",
    ],
)
def test_import_refuses_what_requests_would_not_read_as_an_http_url(url):
    # A bad port, or a host Python and urllib3 read apart, is no http(s) URL either.
    with pytest.raises(PlanError) as refused:
        import_plan(plan_with([{"url": url, "events": ["build.failed"], "secret": "hook"}]))
    assert len(refused.value.problems) == 1
    shown = shown_origin(url) if isinstance(url, str) else url
    assert refused.value.problems[0].endswith(f"url {shown!r} must be an http(s)://host/… URL")


def test_a_refused_webhook_url_is_shown_without_its_path_or_query():
    url = "ftp://chat.example.com/hooks/T0KEN?key=s3cret"
    with pytest.raises(PlanError) as refused:
        import_plan(plan_with([{"url": url, "events": ["build.failed"], "secret": "hook"}]))
    problem = refused.value.problems[0]
    assert "ftp://chat.example.com" in problem
    assert "T0KEN" not in problem and "s3cret" not in problem


def test_import_refuses_a_url_outside_the_allow_list(settings):
    settings.HARBOR_HTTP_ALLOWED_URLS = ["https://*.example.com"]
    with pytest.raises(PlanError, match="HARBOR_HTTP_ALLOWED_URLS"):
        import_plan(
            plan_with([{"url": "http://10.0.0.1/h", "events": ["build.failed"], "secret": "hook"}])
        )


def test_a_passing_build_notifies_each_event_signed_in_order(buildable, receiver):
    driver = notified_build(buildable, receiver)
    driver.update()
    deliver_pending()
    driver.run("ci")
    deliver_pending()
    driver.send("ci", "pass")
    driver.update()
    deliver_pending()
    assert receiver.events == ["build.started", "target.waiting", "build.completed", "build.passed"]
    for call in receiver.calls:
        headers, body = call["headers"], call["body"]
        expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Harbor-Signature-256"] == f"sha256={expected}"
        assert headers["X-Harbor-Event"] == json.loads(body)["event"]
        assert headers["Content-Type"] == "application/json"
        uuid.UUID(headers["X-Harbor-Delivery"])
    assert len({call["headers"]["X-Harbor-Delivery"] for call in receiver.calls}) == 4
    waiting = json.loads(receiver.calls[1]["body"])
    assert waiting["target"]["step"] == "ci" and waiting["target"]["status"] == "waiting"
    passed = json.loads(receiver.calls[3]["body"])
    assert passed["build"] == json.loads(json.dumps(build_shape(driver.build.pk)))
    assert "target" not in passed


def test_a_webhook_gets_only_the_events_it_asks_for(buildable, receiver):
    driver = notified_build(buildable, receiver, events=["build.failed", "target.failed"])
    driver.update()
    driver.run("ci", error="the step broke")
    driver.update()
    deliver_pending()
    assert receiver.events == ["target.failed", "build.failed"]
    assert json.loads(receiver.calls[0]["body"])["target"]["status"] == "failed"


def test_an_aborted_build_notifies_completed_and_aborted(buildable, receiver):
    driver = notified_build(buildable, receiver, events=["build.completed", "build.aborted"])
    driver.update()
    driver.command("abort")
    driver.update()
    deliver_pending()
    assert receiver.events == ["build.completed", "build.aborted"]


def test_build_started_is_written_by_the_start_and_rolls_back_with_it(buildable, receiver):
    with pytest.raises(RuntimeError), transaction.atomic():
        notified_build(buildable, receiver, events=["build.started"])
        assert OutboundDelivery.objects.filter(event="build.started").count() == 1
        raise RuntimeError("the start rolls back")
    assert not OutboundDelivery.objects.exists()


def test_the_rows_are_written_in_the_transaction_of_the_change(buildable, receiver):
    driver = notified_build(buildable, receiver, events=["build.completed"])
    driver.run("ci")
    with pytest.raises(RuntimeError), transaction.atomic():
        driver.send("ci", "pass")
        driver.update()
        assert OutboundDelivery.objects.filter(event="build.completed").count() == 1
        raise RuntimeError("the transaction of the move rolls back")
    assert not OutboundDelivery.objects.exists()
    assert driver.refresh().status == "building"


def test_a_retry_sends_the_same_delivery_id_and_signature(buildable, receiver):
    receiver.answers = [(500, {}), (503, {})]
    driver = notified_build(buildable, receiver, events=["build.started"])
    driver.update()
    row = OutboundDelivery.objects.get()
    for _ in range(3):
        outbox.deliver(row.pk)
        make_due(row)
    row.refresh_from_db()
    assert (row.outcome, row.attempts, row.last_status_code) == ("delivered", 3, 200)
    sent = [
        (c["headers"]["X-Harbor-Delivery"], c["headers"]["X-Harbor-Signature-256"], c["body"])
        for c in receiver.calls
    ]
    assert len(sent) == 3 and len(set(sent)) == 1
    assert sent[0][0] == str(row.uuid)


def test_a_4xx_other_than_408_and_429_is_final(buildable, receiver):
    receiver.answers = [(410, {})]
    driver = notified_build(buildable, receiver, events=["build.started"])
    driver.update()
    row = OutboundDelivery.objects.get()
    assert outbox.deliver(row.pk) is None
    row.refresh_from_db()
    assert (row.outcome, row.dropped_reason) == ("failed", "refused by the destination: HTTP 410")


def test_a_429_waits_at_least_its_retry_after(buildable, receiver):
    receiver.answers = [(429, {"Retry-After": "120"})]
    driver = notified_build(buildable, receiver, events=["build.started"])
    driver.update()
    assert outbox.deliver(OutboundDelivery.objects.get().pk) >= 120


def test_a_secret_gone_from_the_settings_fails_the_row_without_a_request(
    settings, buildable, receiver
):
    driver = notified_build(buildable, receiver, events=["build.started"])
    driver.update()
    settings.HARBOR_CREDENTIALS = {}
    row = OutboundDelivery.objects.get()
    assert outbox.deliver(row.pk) is None
    row.refresh_from_db()
    assert row.outcome == "failed" and "not in HARBOR_CREDENTIALS" in row.dropped_reason
    assert receiver.calls == []


def test_a_url_the_allow_list_no_longer_allows_is_not_requested(settings, buildable, receiver):
    driver = notified_build(buildable, receiver, events=["build.started"])
    driver.update()
    settings.HARBOR_HTTP_ALLOWED_URLS = ["https://*.example.com"]
    outbox.deliver(OutboundDelivery.objects.get().pk)
    assert receiver.calls == []
    assert OutboundDelivery.objects.get().outcome == "failed"


def test_a_newer_notification_waits_for_the_first_try_of_an_older_one(buildable, receiver):
    driver = notified_build(buildable, receiver)
    driver.update()
    driver.run("ci")
    started, waiting = OutboundDelivery.objects.order_by("pk")
    with pytest.raises(StreamBusy):
        outbox.claim(waiting.pk)
    assert outbox.deliver(waiting.pk) is not None  # asked to come back
    outbox.deliver(started.pk)
    make_due(waiting)
    outbox.deliver(waiting.pk)
    assert receiver.events == ["build.started", "target.waiting"]


def test_an_older_notification_failing_does_not_hold_back_the_newer_and_is_then_dropped(
    buildable, receiver
):
    receiver.answers = [(500, {})]
    driver = notified_build(buildable, receiver)
    driver.update()
    started = OutboundDelivery.objects.get()
    assert outbox.deliver(started.pk) is not None  # 500: its retry is scheduled
    driver.run("ci")
    waiting = OutboundDelivery.objects.latest("pk")
    outbox.deliver(waiting.pk)  # goes while the older one waits for its retry
    make_due(started)
    assert outbox.deliver(started.pk) is None
    started.refresh_from_db()
    assert started.outcome == "overtaken"
    assert started.dropped_reason == f"overtaken by notification delivery {waiting.pk}"
    assert receiver.events == ["build.started", "target.waiting"]  # the 500, then the newer


def test_an_older_notification_waits_while_a_newer_one_is_being_sent(buildable, receiver):
    receiver.answers = [(500, {})]
    driver = notified_build(buildable, receiver)
    driver.update()
    started = OutboundDelivery.objects.get()
    outbox.deliver(started.pk)
    driver.run("ci")
    waiting = OutboundDelivery.objects.latest("pk")
    assert outbox.claim(waiting.pk) is not None  # being sent
    make_due(started)
    with pytest.raises(StreamBusy):
        outbox.claim(started.pk)


def test_the_next_waiting_notification_is_the_oldest_never_tried(buildable, receiver):
    driver = notified_build(buildable, receiver)
    driver.update()
    driver.run("ci")
    driver.send("ci", "pass")
    driver.update()
    rows = list(OutboundDelivery.objects.order_by("pk").values_list("pk", flat=True))
    assert outbox.next_waiting(rows[0]) == rows[1]


def test_a_resumed_build_is_not_started_again(buildable, receiver):
    driver = notified_build(buildable, receiver, events=["build.started"])
    driver.update()
    driver.command("pause")
    driver.update()
    assert driver.refresh().status == "paused"
    driver.command("resume")
    driver.update()
    assert driver.refresh().status == "building"
    deliver_pending()
    assert receiver.events == ["build.started"]


def test_a_target_past_its_stuck_after_is_announced_once(buildable, receiver):
    step = waiting_step("ci", config={"stuck_after": 60})
    driver = notified_build(buildable, receiver, events=["target.stuck"], steps=[step])
    driver.update()
    driver.run("ci")
    target = driver.target("ci")
    assert engine.unannounced_stuck_targets() == []  # waiting, but not yet for 60 s
    StatusEvent.objects.filter(target=target).update(at=timezone.now() - timedelta(seconds=61))
    assert engine.unannounced_stuck_targets() == [target.pk]
    assert engine.announce_stuck(target.pk)
    assert not engine.announce_stuck(target.pk)  # a second announcer writes nothing
    assert engine.unannounced_stuck_targets() == []
    deliver_pending()
    assert receiver.events == ["target.stuck"]
    announced = json.loads(receiver.calls[0]["body"])
    assert announced["target"]["step"] == "ci" and announced["target"]["status"] == "waiting"


def test_a_target_no_longer_stuck_is_not_announced(buildable, receiver):
    step = waiting_step("ci", config={"stuck_after": 60})
    driver = notified_build(buildable, receiver, events=["target.stuck"], steps=[step])
    driver.update()
    driver.run("ci")
    target = driver.target("ci")
    StatusEvent.objects.filter(target=target).update(at=timezone.now() - timedelta(seconds=61))
    driver.send("ci", "pass")
    driver.update()
    assert engine.unannounced_stuck_targets() == []
    assert not engine.announce_stuck(target.pk)
    assert not OutboundDelivery.objects.filter(event="target.stuck").exists()
