"""Commit statuses back to the forge: an outbox row written with each build transition,
delivered after the commit to fake GitHub, GitLab and Gitea servers (pytest-httpserver)
that check every call against the forges' documented formats; retries, final refusals,
the ordering guard and the sweep that finds rows a killed worker left behind."""

import json
import re
from datetime import timedelta

import pytest
from celery import current_app
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from werkzeug import Request, Response

from builds import engine
from builds.engine import rows
from builds.models import Build
from forges import outbox
from forges.config import load_forges
from forges.models import OutboundDelivery
from tests.conftest import make_plan
from tests.engine.conftest import Driver, waiting_step
from tests.forges.conftest import SECRETS, TOKENS
from tests.statements import statements_run

pytestmark = pytest.mark.django_db

SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
BASE_URL = "https://harbor.example.com"
REPOSITORIES = {"github": "acme/widgets", "gitlab": "acme/platform/widgets", "gitea": "acme/w"}
API_PATHS = {"github": "/api/v3", "gitlab": "/api/v4", "gitea": "/api/v1"}
STATUS_PATHS = {
    "github": f"/api/v3/repos/acme/widgets/statuses/{SHA}",
    "gitlab": f"/api/v4/projects/acme%2Fplatform%2Fwidgets/statuses/{SHA}",
    "gitea": f"/api/v1/repos/acme/w/statuses/{SHA}",
}
AUTH_HEADERS = {
    "github": ("Authorization", f"Bearer {TOKENS['github']}"),
    "gitlab": ("PRIVATE-TOKEN", TOKENS["gitlab"]),
    "gitea": ("Authorization", f"token {TOKENS['gitea']}"),
}
BODY_FIELDS = {
    "github": {"state", "target_url", "description", "context"},
    "gitlab": {"state", "name", "target_url", "description"},
    "gitea": {"state", "target_url", "description", "context"},
}


class FakeForge:
    """A forge's status endpoint: records each call (raw path, headers, JSON body) and
    answers with the next of ``answers`` (status codes, then 201 for ever)."""

    def __init__(self, httpserver):
        self.calls: list[dict] = []
        self.answers: list[tuple[int, dict]] = []
        httpserver.expect_request(any_path(), method="POST").respond_with_handler(self)

    def __call__(self, request: Request) -> Response:
        self.calls.append(
            {
                "path": request.environ.get("RAW_URI") or request.environ["REQUEST_URI"],
                "headers": dict(request.headers),
                "body": json.loads(request.get_data()),
            }
        )
        status, headers = self.answers.pop(0) if self.answers else (201, {})
        body = {"id": len(self.calls)} if status < 400 else {"message": f"Fake error {status}"}
        return Response(json.dumps(body), status, headers)

    @property
    def states(self) -> list[str]:
        return [call["body"]["state"] for call in self.calls]


def any_path() -> re.Pattern:
    """Every path: the fake checks the raw path itself (the server decodes %2F)."""
    return re.compile(".*")


@pytest.fixture(autouse=True)
def forges(settings, httpserver):
    settings.HARBOR_BASE_URL = BASE_URL
    settings.HARBOR_FORGES = load_forges(
        json.dumps(
            {
                name: {
                    "type": name,
                    "url": httpserver.url_for(API_PATHS[name]),
                    "token": TOKENS[name],
                    "webhook_secret": SECRETS[name],
                }
                for name in API_PATHS
            }
        )
    )


@pytest.fixture
def fake(httpserver) -> FakeForge:
    return FakeForge(httpserver)


def forge_build(forge: str, steps: list[dict], name: str = "widgets-ci") -> Driver:
    """A started build of a plan ``name`` on a buildable the forge's webhook made."""
    buildable = engine.find_or_create_buildable(
        repository=f"https://{forge}.example.com/{REPOSITORIES[forge]}.git",
        ref="refs/heads/main",
        commit=SHA,
        is_manual=False,
        forge=forge,
        forge_repository=REPOSITORIES[forge],
    )
    return Driver(engine.start_build(make_plan(name, steps), buildable))


def deliver_pending() -> None:
    """Deliver every undelivered status row in id order, as the workers would after each
    commit (these tests run in a transaction, so ``on_commit`` never fires)."""
    rows = OutboundDelivery.objects.filter(outcome="pending").order_by("pk")
    for pk in rows.values_list("pk", flat=True):
        outbox.deliver(pk)


def run_to_the_end(driver: Driver, verdict: str = "pass", deliver: bool = False) -> None:
    """``ci`` run into waiting (the start ran the first pass), its verdict, and the pass that
    decides; with ``deliver``, the statuses are delivered after each commit, as workers
    would."""
    for event in (lambda: driver.run("ci"), lambda: driver.send("ci", verdict)):
        event()
        if deliver:
            deliver_pending()
    driver.update()
    if deliver:
        deliver_pending()


def make_due(row: OutboundDelivery) -> None:
    """Let time pass until the row's next attempt is due (and a lapsed claim is over)."""
    earlier = timezone.now() - timedelta(seconds=1)
    OutboundDelivery.objects.filter(pk=row.pk, claimed_until__isnull=False).update(
        claimed_until=earlier
    )
    OutboundDelivery.objects.filter(pk=row.pk).update(next_attempt_at=earlier)


def test_a_github_build_posts_pending_then_success_in_the_documented_format(fake):
    driver = forge_build("github", [waiting_step("ci")])
    deliver_pending()
    run_to_the_end(driver, deliver=True)
    assert driver.refresh().status == "passed"
    # The build commits running: the start ran its first pass, so no "waiting to start".
    assert fake.states == ["pending", "pending", "success"]
    descriptions = [call["body"]["description"] for call in fake.calls]
    assert descriptions == ["0 of 1 steps passed", "waiting for ci", "1 of 1 steps passed"]
    url = f"{BASE_URL}/builds/{driver.build.pk}/"
    for call in fake.calls:
        assert call["path"] == STATUS_PATHS["github"]
        assert call["headers"]["Authorization"] == f"Bearer {TOKENS['github']}"
        assert call["headers"]["Content-Type"] == "application/json"
        assert set(call["body"]) == BODY_FIELDS["github"]
        assert call["body"]["context"] == "harbor/widgets-ci"
        assert call["body"]["target_url"] == url


def test_a_gitlab_build_posts_running_then_success_to_the_encoded_project(fake):
    driver = forge_build("gitlab", [waiting_step("ci")])
    deliver_pending()
    run_to_the_end(driver, deliver=True)
    assert fake.states == ["running", "success"]
    for call in fake.calls:
        assert call["path"] == STATUS_PATHS["gitlab"]
        assert call["headers"]["Private-Token"] == TOKENS["gitlab"]
        assert "Authorization" not in call["headers"]
        assert set(call["body"]) == BODY_FIELDS["gitlab"]
        assert call["body"]["name"] == "harbor/widgets-ci"


def test_a_gitea_build_that_fails_ends_with_failure(fake):
    driver = forge_build("gitea", [waiting_step("ci"), waiting_step("other")])
    deliver_pending()
    run_to_the_end(driver, verdict="fail", deliver=True)
    assert driver.refresh().status == "failed"
    assert fake.states[-1] == "failure"
    for call in fake.calls:
        assert call["path"] == STATUS_PATHS["gitea"]
        assert call["headers"]["Authorization"] == f"token {TOKENS['gitea']}"
        assert set(call["body"]) == BODY_FIELDS["gitea"]
    assert fake.calls[-1]["body"]["description"] == "0 of 2 steps passed; ci failed"


def test_a_waiting_build_says_which_step_it_waits_for(fake):
    driver = forge_build("github", [waiting_step("ci"), waiting_step("lint")])
    driver.update()
    driver.command("pause")
    driver.run("ci")
    driver.update()
    deliver_pending()
    assert fake.calls[-1]["body"]["description"] == "paused; waiting for ci"


@pytest.mark.parametrize(
    ("status", "github", "gitlab"),
    [
        ("pending", "pending", "pending"),
        ("building", "pending", "running"),
        ("paused", "pending", "pending"),
        ("passed", "success", "success"),
        ("failed", "failure", "failed"),
        ("deadlocked", "failure", "failed"),
        ("error", "error", "failed"),
        ("aborted", "error", "canceled"),
    ],
)
def test_each_build_status_maps_to_the_forges_state(status, github, gitlab):
    from forges.statuses import forge_state

    assert forge_state("github", status) == github
    assert forge_state("gitea", status) == github
    assert forge_state("gitlab", status) == gitlab


def test_a_build_without_a_forge_writes_no_status(buildable):
    driver = Driver(engine.start_build(make_plan("p", [waiting_step("ci")]), buildable))
    run_to_the_end(driver)
    assert not OutboundDelivery.objects.exists()


def test_the_status_row_is_written_in_the_transaction_of_the_transition():
    driver = forge_build("github", [waiting_step("ci"), waiting_step("ship", depends_on=["ci"])])
    driver.run("ci")
    before = OutboundDelivery.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        driver.send("ci", "fail")
        assert engine.update_build(driver.build.pk).new_status == "failed"
        assert OutboundDelivery.objects.count() == before + 1
        raise RuntimeError("the transition rolls back")
    assert OutboundDelivery.objects.count() == before
    assert driver.refresh().status == "building"


def test_a_forge_answering_500_twice_gets_the_status_on_the_third_attempt(fake):
    fake.answers = [(500, {}), (503, {})]
    forge_build("github", [waiting_step("ci")])
    row = OutboundDelivery.objects.get()
    assert outbox.deliver(row.pk) is not None  # a retry is due
    row.refresh_from_db()
    assert (row.outcome, row.attempts, row.last_status_code) == ("pending", 1, 500)
    assert row.next_attempt_at > timezone.now()
    assert outbox.deliver(row.pk) is None  # not before its time
    make_due(row)
    assert outbox.deliver(row.pk) is not None
    make_due(row)
    assert outbox.deliver(row.pk) is None
    row.refresh_from_db()
    assert (row.outcome, row.attempts, row.last_status_code) == ("delivered", 3, 201)
    assert row.delivered_at is not None
    assert fake.states == ["pending"] * 3


def test_a_refusal_other_than_408_or_429_is_final(fake):
    fake.answers = [(422, {})]
    forge_build("github", [waiting_step("ci")])
    row = OutboundDelivery.objects.get()
    assert outbox.deliver(row.pk) is None
    row.refresh_from_db()
    assert (row.outcome, row.attempts, row.last_status_code) == ("failed", 1, 422)
    assert row.dropped_reason == "refused by the destination: HTTP 422"
    make_due(row)
    assert outbox.deliver(row.pk) is None
    assert len(fake.calls) == 1


def test_a_429_is_retried_no_sooner_than_its_retry_after(fake):
    fake.answers = [(429, {"Retry-After": "120"})]
    forge_build("github", [waiting_step("ci")])
    row = OutboundDelivery.objects.get()
    delay = outbox.deliver(row.pk)
    assert delay is not None and delay >= 120
    row.refresh_from_db()
    assert row.next_attempt_at >= timezone.now() + timedelta(seconds=119)


def test_it_gives_up_after_the_last_attempt(fake):
    fake.answers = [(502, {})] * outbox.MAX_ATTEMPTS
    forge_build("github", [waiting_step("ci")])
    row = OutboundDelivery.objects.get()
    for _ in range(outbox.MAX_ATTEMPTS):
        outbox.deliver(row.pk)
        make_due(row)
    row.refresh_from_db()
    assert (row.outcome, row.attempts) == ("failed", outbox.MAX_ATTEMPTS)
    assert row.dropped_reason == f"gave up after {outbox.MAX_ATTEMPTS} attempts"
    assert outbox.deliver(row.pk) is None
    assert len(fake.calls) == outbox.MAX_ATTEMPTS


def test_a_connection_error_is_retried(settings, fake):
    driver = forge_build("github", [waiting_step("ci")])
    row = OutboundDelivery.objects.get(build=driver.build)
    settings.HARBOR_FORGES["github"] = load_forges(
        json.dumps(
            {
                "github": {
                    "type": "github",
                    "url": "http://127.0.0.1:9",
                    "token": "t",
                    "webhook_secret": "s",
                }
            }
        )
    )["github"]
    assert outbox.deliver(row.pk) is not None
    row.refresh_from_db()
    assert (row.outcome, row.last_status_code) == ("pending", None)
    assert "Connection" in row.last_error


def test_a_status_url_outside_the_allow_list_is_not_requested(settings, fake):
    settings.HARBOR_HTTP_ALLOWED_URLS = ["https://*:*"]
    forge_build("github", [waiting_step("ci")])
    row = OutboundDelivery.objects.get()
    assert outbox.deliver(row.pk) is None
    row.refresh_from_db()
    assert row.outcome == "failed"
    assert "HARBOR_HTTP_ALLOWED_URLS" in row.last_error
    assert fake.calls == []


def test_an_overtaken_retry_is_dropped_and_never_hides_the_newer_status(fake):
    fake.answers = [(500, {})]
    driver = forge_build("github", [waiting_step("ci")])
    first = OutboundDelivery.objects.get()
    outbox.deliver(first.pk)  # 500: its retry is scheduled
    run_to_the_end(driver)
    newest = OutboundDelivery.objects.latest("pk")
    outbox.deliver(newest.pk)  # success reaches the forge first
    make_due(first)
    outbox.deliver(first.pk)  # then the late retry of pending
    first.refresh_from_db()
    assert first.outcome == "overtaken"
    assert first.dropped_reason == f"overtaken by status delivery {newest.pk}"
    assert fake.states == ["pending", "success"]


def test_an_older_status_is_not_sent_after_a_newer_one_was_written(fake):
    driver = forge_build("github", [waiting_step("ci")])
    run_to_the_end(driver)
    deliver_pending()
    # The rows were all waiting: only the newest is worth sending.
    assert fake.states == ["success"]
    outcomes = list(OutboundDelivery.objects.order_by("pk").values_list("outcome", flat=True))
    assert outcomes == ["overtaken"] * (len(outcomes) - 1) + ["delivered"]
    assert len(outcomes) == 3


def test_a_newer_status_waits_while_an_older_one_is_being_sent(fake):
    driver = forge_build("github", [waiting_step("ci")])
    first = OutboundDelivery.objects.get()
    claim = outbox.claim(first.pk)  # a worker is sending it now
    assert claim is not None
    driver.run("ci")  # waiting for ci: a newer status
    second = OutboundDelivery.objects.latest("pk")
    delay = outbox.deliver(second.pk)
    assert delay is not None and delay > 0
    assert fake.calls == []
    second.refresh_from_db()
    assert (second.outcome, second.attempts) == ("pending", 0)


def test_a_row_a_killed_worker_left_undelivered_is_found_by_the_sweep(settings, fake):
    forge_build("github", [waiting_step("ci")])
    row = OutboundDelivery.objects.get()
    # The transition committed; its task never ran (the worker was killed). Until the
    # task's grace has passed, the sweep leaves the row to it.
    assert outbox.due_deliveries() == []
    later = timezone.now() + timedelta(seconds=settings.HARBOR_REPAIR_BOUND + 1)
    assert outbox.due_deliveries(now=later) == [row.pk]
    # Queued once: a second sweep does not queue it again while that task is on the way.
    assert outbox.due_deliveries(now=later) == []
    outbox.deliver(row.pk)
    row.refresh_from_db()
    assert row.outcome == "delivered"
    assert fake.states == ["pending"]


def test_a_row_whose_sender_died_mid_request_is_found_once_its_lease_lapses(settings, fake):
    forge_build("github", [waiting_step("ci")])
    row = OutboundDelivery.objects.get()
    assert outbox.claim(row.pk) is not None  # then the worker is SIGKILLed
    row.refresh_from_db()
    assert outbox.due_deliveries(now=row.claimed_until) == []
    later = row.claimed_until + timedelta(seconds=settings.HARBOR_REPAIR_BOUND + 1)
    assert outbox.due_deliveries(now=later) == [row.pk]
    make_due(row)
    outbox.deliver(row.pk)
    row.refresh_from_db()
    assert (row.outcome, row.attempts) == ("delivered", 2)


def test_a_webhook_build_is_tied_to_its_forge_and_repository(client, fake):
    from tests.forges.conftest import make_triggered_plan, post_fixture, trigger

    make_triggered_plan("unit", trigger("github"))
    response = post_fixture(client, "github", "push__branch")
    build = Build.objects.get(pk=response.json()["builds"][0])
    assert (build.buildable.forge, build.buildable.forge_repository) == ("github", "acme/widgets")
    row = OutboundDelivery.objects.get(build=build)
    commit = build.buildable.commit
    assert (row.forge, row.repository, row.commit) == ("github", "acme/widgets", commit)
    assert row.payload["state"] == "pending"
    assert row.payload["context"] == "harbor/unit"


def test_a_pass_writes_its_status_without_reading_the_buildable_or_plan_again():
    driver = forge_build("github", [waiting_step("ci")])
    driver.update()
    driver.run("ci")
    driver.send("ci", "pass")
    with CaptureQueriesContext(connection) as captured:
        driver.update()  # the pass that passes the build, and writes its status
    row = OutboundDelivery.objects.order_by("-pk").first()
    assert (row.repository, row.commit, row.state) == ("acme/widgets", SHA, "success")
    assert row.payload["context"] == "harbor/widgets-ci"
    # The statement that locks the build read them: no other reads where the status goes
    # (the buildable's own lock, which every pass that moves its build takes, reads it too).
    reads = [s.replace("$1", "%s") for s in statements_run(captured) if "forge_repository" in s]
    assert reads == [rows.LOCK_BUILD_SQL, rows.LOCK_BUILDABLE_SQL], reads


def test_deliveries_go_to_the_targets_queue(settings):
    route = current_app.amqp.router.route({}, "forges.tasks.deliver")
    assert route["queue"].name == f"{settings.HARBOR_QUEUE_PREFIX}.targets"


def test_the_commit_queues_the_delivery_of_its_status(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    # Sent to a queue of this test's own: the session's Celery workers consume the targets
    # queue and could take the task before it is read here.
    own_queue = f"{settings.HARBOR_QUEUE_PREFIX}.statuses-test"
    app = current_app._get_current_object()
    send_task = app.send_task
    monkeypatch.setattr(app, "send_task", lambda name, **kw: send_task(name, queue=own_queue, **kw))
    with django_capture_on_commit_callbacks(execute=True):
        forge_build("github", [waiting_step("ci")])
    row = OutboundDelivery.objects.get()
    sent = []
    with current_app.connection_for_read() as connection:
        queue = connection.SimpleQueue(own_queue)
        while True:
            try:
                message = queue.get(timeout=1)
            except queue.Empty:
                break
            message.ack()
            sent.append((message.headers["task"], message.headers["argsrepr"]))
        queue.close()
    assert ("forges.tasks.deliver", f"({row.pk},)") in sent


def test_the_build_page_lists_each_status_sent_with_its_outcome(client, user, fake):
    fake.answers = [(500, {})]
    driver = forge_build("github", [waiting_step("ci")])
    deliver_pending()
    client.force_login(user)
    page = client.get(f"/builds/{driver.build.pk}/").content.decode()
    assert "Status to <code>github: acme/widgets@" in page
    assert f"acme/widgets@{SHA[:12]}" in page
    assert "0 of 1 steps passed" in page
    assert "Fake error 500" in page  # the start of the forge's answer
    assert "<td>1</td>" in page  # attempts
    assert TOKENS["github"] not in page


def test_the_page_of_a_build_without_a_forge_lists_no_statuses(client, user, buildable):
    build = engine.start_build(make_plan("p", [waiting_step("ci")]), buildable)
    client.force_login(user)
    assert 'id="deliveries"' not in client.get(f"/builds/{build.pk}/").content.decode()
