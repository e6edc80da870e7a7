"""Commit statuses and notifications delivered by real Celery worker processes, against a
fake forge and a fake webhook receiver served from this process (pytest-httpserver): a
forge failing the first calls still ends with the build's verdict, a delivering worker
SIGKILLed mid-request (and a commit whose task was never queued) still gets the status
there through the sweep, and notifications arrive signed and in order.

The workers run on queues of their own (``tests.races.test_crashes.Cluster``), so the
session's shared workers, which have no HARBOR_FORGES, never take these tasks.
Bounds are small: HARBOR_REPAIR_BOUND=2 (beat sweeps every second), HARBOR_STATUS_TIMEOUT=3
(a claim lasts 3 × 3 + 30 s).
"""

import hashlib
import hmac
import json
import threading

import pytest
from werkzeug import Request, Response

from builds import engine
from builds.models import Build, BuildTarget
from forges.config import load_forges
from forges.models import OutboundDelivery
from tests.conftest import make_plan
from tests.races.test_crashes import Cluster
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]

SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
TOKEN = "ghp_worker_token_0c4e"
SECRET = "receiver-secret-51ab"
STATUS_PATH = f"/api/v3/repos/acme/widgets/statuses/{SHA}"
SLOW = 90  # seconds: retries back off 5-20 s, a killed claim lapses after 39 s, on 2 shared cores


class FakeForge:
    """GitHub's status endpoint: checks each call's path, token and body, records it, and
    answers with the next of ``answers`` (then 201). ``hang_on`` (a state) makes the
    first call of that state wait until ``release`` is set."""

    def __init__(self, httpserver):
        self.calls: list[dict] = []
        self.answers: list[int] = []
        self.hang_on: str | None = None
        self.arrived = threading.Event()
        self.release = threading.Event()
        httpserver.expect_request(STATUS_PATH, method="POST").respond_with_handler(self)

    def __call__(self, request: Request) -> Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        body = json.loads(request.get_data())
        assert set(body) == {"state", "target_url", "description", "context"}
        if body["state"] == self.hang_on:
            self.hang_on = None
            self.arrived.set()
            self.release.wait(60)  # the worker is SIGKILLed meanwhile
            return Response("{}", 201)
        code = self.answers.pop(0) if self.answers else 201
        self.calls.append(
            {"state": body["state"], "code": code, "description": body["description"]}
        )
        return Response(json.dumps({"message": "busy"} if code >= 500 else {"id": 1}), code)

    def accepted(self) -> list[str]:
        return [call["state"] for call in self.calls if call["code"] < 300]


class Receiver:
    """A webhook receiver that verifies X-Harbor-Signature-256 (401 if it is wrong) and
    records each verified event with its delivery id."""

    def __init__(self, httpserver):
        self.events: list[tuple[str, str]] = []
        self.refused = 0
        httpserver.expect_request("/hook", method="POST").respond_with_handler(self)
        self.url = httpserver.url_for("/hook")

    def __call__(self, request: Request) -> Response:
        body = request.get_data()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Harbor-Signature-256", ""), expected):
            self.refused += 1
            return Response("bad signature", 401)
        event = json.loads(body)["event"]
        assert request.headers["X-Harbor-Event"] == event
        self.events.append((event, request.headers["X-Harbor-Delivery"]))
        return Response("{}", 200)


class DeliveringCluster(Cluster):
    """The crash tests' cluster, whose workers know the fake forge and the receiver's secret,
    and to whose queue this process's outbox rows go."""

    def __init__(self, monkeypatch, tmp_path, httpserver, settings):
        super().__init__(monkeypatch, tmp_path)
        self.sending = True
        forges = {"github": {"type": "github", "url": httpserver.url_for("/api/v3"),
                             "token": TOKEN, "webhook_secret": "unused-here"}}  # fmt: skip
        credentials = {"receiver": {"type": "bearer", "token": SECRET}}
        self.forge_env = {
            "HARBOR_FORGES": json.dumps(forges),
            "HARBOR_CREDENTIALS": json.dumps(credentials),
            "HARBOR_STATUS_TIMEOUT": "3",
        }
        settings.HARBOR_FORGES = load_forges(json.dumps(forges))
        settings.HARBOR_CREDENTIALS = credentials
        monkeypatch.setattr("forges.dispatch.deliver", self.deliver)
        self.dropped: list[int] = []
        self.drop_deliveries = False

    def deliver(self, delivery_id: int, countdown: float = 0) -> None:
        if self.drop_deliveries:  # this process dies right after the commit
            self.dropped.append(delivery_id)
            return
        self.app.send_task(
            "forges.tasks.deliver",
            args=(delivery_id,),
            queue=f"{self.prefix}.targets",
            countdown=countdown or None,
        )

    def worker(self, queues: str = "engine,targets", beat: bool = False, concurrency: int = 1):
        return super().worker(queues, beat, concurrency, **self.forge_env)


@pytest.fixture
def cluster(monkeypatch, tmp_path, httpserver, settings):
    made = DeliveringCluster(monkeypatch, tmp_path, httpserver, settings)
    yield made
    made.close()


def forge_build(name: str, notify: list | None = None) -> Build:
    """A started build, on a buildable the forge's webhook made, of a plan whose one step
    waits for a message."""
    plan = make_plan(
        name, [{"key": "ci", "step_type": "sleep", "wait_for_message": True}], notify=notify or []
    )
    buildable = engine.find_or_create_buildable(
        repository="https://github.com/acme/widgets.git",
        ref="refs/heads/main",
        commit=SHA,
        is_manual=False,
        forge="github",
        forge_repository="acme/widgets",
    )
    return engine.start_build(plan, buildable)


def send_verdict(build: Build, verdict: str = "pass") -> None:
    target = wait_for(
        lambda: BuildTarget.objects.filter(build=build, status="waiting").first(),
        timeout=SLOW,
        message="the target never waited",
    )
    engine.receive_message(target.phid, verdict)


def settled(build: Build) -> bool:
    rows = OutboundDelivery.objects.filter(build=build)
    return rows.exists() and not rows.filter(outcome="pending").exists()


def test_a_forge_failing_the_first_two_calls_ends_with_success_after_pending(cluster, httpserver):
    forge = FakeForge(httpserver)
    forge.answers = [500, 500]
    cluster.worker(beat=True)
    build = forge_build("flaky-forge")
    wait_for(lambda: "pending" in forge.accepted(), timeout=SLOW, message=str(forge.calls))
    send_verdict(build)
    wait_for(lambda: forge.accepted()[-1:] == ["success"], timeout=SLOW, message=str(forge.calls))
    assert [call["code"] for call in forge.calls[:2]] == [500, 500]
    accepted = forge.accepted()
    assert accepted[-1] == "success" and set(accepted[:-1]) == {"pending"}
    wait_for(lambda: settled(build), timeout=SLOW)
    outcomes = set(OutboundDelivery.objects.filter(build=build).values_list("outcome", flat=True))
    assert outcomes <= {"delivered", "overtaken"}


def test_a_delivering_worker_killed_mid_request_still_gets_the_status_there(cluster, httpserver):
    forge = FakeForge(httpserver)
    forge.hang_on = "success"
    worker = cluster.worker()
    build = forge_build("killed-sender")
    wait_for(lambda: "pending" in forge.accepted(), timeout=SLOW)
    send_verdict(build)
    assert forge.arrived.wait(SLOW), "the success status never reached the forge"
    worker.kill()  # the move to passed committed; its status is mid-request
    forge.release.set()
    row = OutboundDelivery.objects.get(build=build, state="success")
    assert row.outcome == "pending" and row.attempts == 1
    cluster.worker(beat=True)  # its sweep finds the row once the dead worker's claim lapses
    wait_for(lambda: settled(build), timeout=SLOW, message=str(forge.calls))
    row.refresh_from_db()
    assert (row.outcome, row.attempts) == ("delivered", 2)
    assert forge.accepted()[-1] == "success"


def test_statuses_whose_tasks_were_never_queued_are_sent_by_the_sweep(cluster, httpserver):
    forge = FakeForge(httpserver)
    cluster.sending = False  # the engine's follow-ups too: this process drives the build
    cluster.drop_deliveries = True  # each move commits, then its delivery task is lost
    build = forge_build("lost-tasks")
    engine.update_build(build.pk)
    target = BuildTarget.objects.get(build=build)
    engine.finish_target(engine.begin_target(target.pk))
    rows = list(OutboundDelivery.objects.filter(build=build).order_by("pk"))
    assert [row.pk for row in rows] == cluster.dropped and len(rows) >= 2
    cluster.drop_deliveries = False
    cluster.worker(beat=True)
    wait_for(lambda: settled(build), timeout=SLOW, message=str(forge.calls))
    outcomes = list(OutboundDelivery.objects.filter(build=build).order_by("pk").values_list(
        "outcome", flat=True))  # fmt: skip
    assert outcomes == ["overtaken"] * (len(rows) - 1) + ["delivered"]
    assert forge.calls == [{"state": "pending", "code": 201, "description": "waiting for ci"}]


def test_notifications_arrive_signed_and_in_order(cluster, httpserver):
    FakeForge(httpserver)
    receiver = Receiver(httpserver)
    webhook = {"url": receiver.url, "events": ["build.started", "target.waiting",
               "build.completed", "build.passed"], "secret": "receiver"}  # fmt: skip
    cluster.worker(beat=True, concurrency=2)
    build = forge_build("notifying", notify=[webhook])
    send_verdict(build)
    wait_for(lambda: len(receiver.events) == 4, timeout=SLOW, message=str(receiver.events))
    assert [event for event, _ in receiver.events] == [
        "build.started", "target.waiting", "build.completed", "build.passed"
    ]  # fmt: skip
    assert receiver.refused == 0
    rows = OutboundDelivery.objects.filter(build=build, kind="notification").order_by("pk")
    assert [str(row.uuid) for row in rows] == [delivery for _, delivery in receiver.events]
