"""``GET /api/v1/messages/<id>``, ``GET /api/v1/builds`` and ``GET /api/v1/targets/<id>``:
what they show, their filters, and query counts that do not grow with the rows shown."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from builds import logs
from builds.models import Build, Buildable, BuildMessage, LintMessage, UnitResult
from tests.api.conftest import make_build, make_target
from tests.api.test_sendmessage import LINT, UNIT, assert_error, message
from tests.conftest import make_plan


def count_queries(client, url: str) -> int:
    """Queries of one GET of ``url``, after a first one has recorded the token's last use."""
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries)


def test_a_message_shows_it_is_not_consumed_yet(client, waiting_target, user):
    sent = client.post(
        "/api/v1/sendmessage", message(waiting_target, idempotency_key="k1"), format="json"
    )
    body = client.get(f"/api/v1/messages/{sent.json()['id']}").json()
    assert body["id"] == sent.json()["id"]
    assert (body["receiver"], body["type"], body["author"]) == (
        waiting_target.phid,
        "pass",
        "alice",
    )
    assert (body["build"], body["target"]) == (waiting_target.build_id, waiting_target.pk)
    assert (body["consumed"], body["outcome"], body["date_consumed"]) == (False, None, None)
    assert body["idempotency_key"] == "k1"
    assert body["date_created"]


def test_a_consumed_message_shows_its_outcome(client, waiting_target):
    stored = BuildMessage.objects.create(
        receiver_phid=waiting_target.phid,
        target=waiting_target,
        build=waiting_target.build,
        type="pass",
        is_consumed=True,
        date_consumed=timezone.now(),
        outcome="target passed",
    )
    body = client.get(f"/api/v1/messages/{stored.pk}").json()
    assert (body["consumed"], body["outcome"], body["author"]) == (True, "target passed", None)
    assert body["date_consumed"]


def test_an_unknown_message_is_404(client, db):
    assert_error(client.get("/api/v1/messages/999999"), 404, "not_found")


def test_reading_a_message_takes_a_constant_number_of_queries(client, waiting_target):
    receipt = client.post("/api/v1/sendmessage", message(waiting_target), format="json").json()
    # token lookup, then the message with its author and target
    assert count_queries(client, f"/api/v1/messages/{receipt['id']}") == 2


@pytest.fixture
def builds(user, buildable) -> list[Build]:
    deploy = make_plan("deploy", [{"key": "ship"}])
    test = make_plan("test", [{"key": "unit"}])
    other = Buildable.objects.create(repository="https://example.com/other.git", commit="c" * 40)
    return [
        make_build(deploy, buildable, status="passed", initiator=user),
        make_build(test, buildable, status="failed"),
        make_build(test, other, status="building"),
        make_build(deploy, other, status="failed"),
    ]


def listed(client, query: str = "") -> list[int]:
    response = client.get(f"/api/v1/builds{query}")
    assert response.status_code == 200, response.content
    return [build["id"] for build in response.json()["results"]]


def test_the_build_list_shows_builds_newest_first(client, builds):
    body = client.get("/api/v1/builds").json()
    assert (body["count"], body["page"], body["pages"]) == (4, 1, 1)
    assert [b["id"] for b in body["results"]] == [b.pk for b in reversed(builds)]
    newest = body["results"][-1]
    assert (newest["plan"], newest["status"], newest["initiator"]) == ("deploy", "passed", "alice")
    assert newest["buildable"]["phid"] == builds[0].buildable.phid
    assert "targets" not in newest


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?status=failed", [3, 1]),
        ("?status=failed,passed", [3, 1, 0]),
        ("?plan=test", [2, 1]),
        ("?plan=test&status=building", [2]),
        ("?status=paused", []),
    ],
)
def test_the_build_list_filters_by_status_and_plan(client, builds, query, expected):
    assert listed(client, query) == [builds[i].pk for i in expected]


def test_the_build_list_filters_by_plan_phid_and_buildable_phid_or_id(client, builds):
    assert listed(client, f"?plan={builds[0].plan.phid}") == [builds[3].pk, builds[0].pk]
    other = builds[2].buildable
    assert listed(client, f"?buildable={other.phid}") == [builds[3].pk, builds[2].pk]
    assert listed(client, f"?buildable={other.pk}") == [builds[3].pk, builds[2].pk]


def test_the_build_list_refuses_an_unknown_status(client, builds):
    body = assert_error(
        client.get("/api/v1/builds?status=passed,exploded"), 400, "validation_error"
    )
    assert "exploded" in body["fields"]["status"][0]


@pytest.mark.parametrize("query", ["status=", "status=,", "plan=", "buildable=", "page="])
def test_the_build_list_refuses_a_filter_given_empty_rather_than_listing_everything(
    client, builds, query
):
    body = assert_error(client.get(f"/api/v1/builds?{query}"), 400, "validation_error")
    assert list(body["fields"]) == [query.split("=")[0]]


def test_the_build_list_pages_by_50(client, user, buildable):
    plan = make_plan("many", [{"key": "a"}])
    made = [make_build(plan, buildable) for _ in range(51)]
    first = client.get("/api/v1/builds").json()
    second = client.get("/api/v1/builds?page=2").json()
    assert (first["count"], first["pages"], len(first["results"])) == (51, 2, 50)
    assert [b["id"] for b in second["results"]] == [made[0].pk]
    assert_error(client.get("/api/v1/builds?page=3"), 404, "not_found", "last page")
    assert_error(client.get("/api/v1/builds?page=0"), 400, "validation_error", "page")


def test_the_build_list_takes_the_same_queries_for_1_or_20_builds(client, user, buildable):
    plan = make_plan("counted", [{"key": "a"}])
    make_build(plan, buildable, initiator=user)
    one = count_queries(client, "/api/v1/builds?status=building")
    for _ in range(19):
        make_build(plan, buildable, initiator=user)
    assert count_queries(client, "/api/v1/builds?status=building") == one == 3


@pytest.fixture
def reported_target(client, waiting_target):
    """The waiting target with two messages of results and two logs."""
    client.post(
        "/api/v1/sendmessage",
        message(waiting_target, type="work", unit=[UNIT], lint=[]),
        format="json",
    )
    client.post(
        "/api/v1/sendmessage",
        message(waiting_target, unit=[{"name": "test_b", "result": "fail"}], lint=[LINT]),
        format="json",
    )
    logs.write(waiting_target, "http://ci.example.com/run", "http.head", "HTTP 200 OK")
    logs.write(waiting_target, "http://ci.example.com/run", "http.body", "queued")
    return waiting_target


def test_a_target_shows_its_results_and_log_list(client, reported_target):
    body = client.get(f"/api/v1/targets/{reported_target.pk}").json()
    assert (body["id"], body["phid"], body["status"], body["step"]) == (
        reported_target.pk,
        reported_target.phid,
        "waiting",
        "ci",
    )
    assert (body["build"], body["build_phid"]) == (
        reported_target.build_id,
        reported_target.build.phid,
    )
    assert [(u["name"], u["result"]) for u in body["unit"]] == [
        ("test_login", "pass"),
        ("test_b", "fail"),
    ]
    assert body["unit"][0]["duration"] == 0.25
    messages = list(BuildMessage.objects.order_by("id").values_list("id", flat=True))
    assert [u["message"] for u in body["unit"]] == messages
    assert body["lint"] == [{**LINT, "description": "", "message": messages[1]}]
    assert [(log["type"], log["source"], log["live"]) for log in body["logs"]] == [
        ("http.head", "http://ci.example.com/run", False),
        ("http.body", "http://ci.example.com/run", False),
    ]


def test_a_target_takes_the_same_queries_however_many_results(client, reported_target):
    few = count_queries(client, f"/api/v1/targets/{reported_target.pk}")
    UnitResult.objects.bulk_create(
        UnitResult(target=reported_target, name=f"t{i}", result="pass") for i in range(200)
    )
    LintMessage.objects.bulk_create(
        LintMessage(target=reported_target, name="n", code="c", severity="error", path=f"{i}")
        for i in range(50)
    )
    logs.write(reported_target, "harbor", "extra", "text")
    assert count_queries(client, f"/api/v1/targets/{reported_target.pk}") == few == 5


def test_an_unknown_target_is_404(client, db):
    assert_error(client.get("/api/v1/targets/999999"), 404, "not_found")


def test_a_target_of_another_generation_is_shown_too(client, waiting_plan, buildable):
    build = make_build(waiting_plan, buildable, generation=2)
    old = make_target(build, generation=1, status="aborted")
    assert client.get(f"/api/v1/targets/{old.pk}").json()["generation"] == 1


@pytest.mark.parametrize("value", ["²", "٣", "1²", "1" * 5000])
def test_a_buildable_filter_of_non_ascii_digits_is_no_id_and_matches_nothing(client, builds, value):
    # str.isdigit() is true for "²" but int() refuses it; "٣" is int() 3 but no id; int()
    # refuses more than 4,300 digits (sys.get_int_max_str_digits).
    assert listed(client, f"?buildable={value}") == []
