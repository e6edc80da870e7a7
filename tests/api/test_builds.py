"""``POST /api/v1/builds`` and ``GET /api/v1/builds/<id>`` (docs/design.md §4.4)."""

from datetime import datetime

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from builds.models import Build, Buildable, BuildPlan
from tests.api.conftest import assert_nothing_stored, make_build, make_target
from tests.conftest import make_plan

URL = "/api/v1/builds"
BUILDABLE = {"repository": "https://example.com/app.git", "ref": "main", "commit": "b" * 40}


@pytest.fixture
def plan(db) -> BuildPlan:
    return make_plan("deploy", [{"key": "compile"}, {"key": "ship", "depends_on": ["compile"]}])


def test_it_starts_a_build_and_answers_201_with_it(client, plan, user):
    response = client.post(
        URL,
        {"plan": "deploy", "buildable": BUILDABLE, "parameters": {"env": "prod"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    build = Build.objects.get()
    body = response.json()
    assert body["id"] == build.id
    assert (body["plan"], body["initiator"], body["status"]) == ("deploy", "alice", build.status)
    assert body["buildable"] == {
        "id": build.buildable_id,
        "phid": build.buildable.phid,
        **BUILDABLE,
    }
    assert (build.initiator, build.parameters) == (user, {"env": "prod"})
    assert build.plan_snapshot == plan.snapshot()


def test_it_finds_a_plan_by_phid_and_reuses_the_buildable(client, plan, buildable):
    existing = {k: getattr(buildable, k) for k in ("repository", "ref", "commit")}
    response = client.post(URL, {"plan": plan.phid, "buildable": existing}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["buildable"]["id"] == buildable.id
    assert Buildable.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"plan": "no-such-plan", "buildable": BUILDABLE}, "plan", "no-such-plan"),
        ({"buildable": BUILDABLE}, "plan", "required"),
        ({"plan": "deploy", "buildable": {"commit": 40}}, "buildable.commit", "string"),
        ({"plan": "deploy", "parameters": {"env": 3}}, "parameters.env", "string"),
        ({"plan": "deploy", "parameters": {"Bad Name": "x"}}, "parameters", "Bad Name"),
        ({"plan": "deploy", "parameters": ["env"]}, "parameters", "dictionary"),
    ],
)
def test_it_refuses_an_invalid_request_and_creates_nothing(client, plan, payload, field, words):
    with assert_nothing_stored():
        response = client.post(URL, payload, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert (body["error"], field in body["detail"]) == ("validation_error", True)
    assert words in " ".join(body["fields"][field])


def test_it_refuses_a_disabled_plan(client, plan):
    BuildPlan.objects.filter(pk=plan.pk).update(status=BuildPlan.Status.DISABLED)
    with assert_nothing_stored():
        response = client.post(URL, {"plan": "deploy", "buildable": BUILDABLE}, format="json")
    assert response.status_code == 400
    assert "disabled" in response.json()["fields"]["plan"][0]


def test_get_shows_the_build_with_its_current_generations_targets(client, plan, buildable, user):
    build = make_build(plan, buildable, generation=2, initiator=user)
    make_target(build, "compile", generation=1, status="aborted")
    compile_target = make_target(build, "compile", status="passed", wait_for_message=False)
    ship = make_target(build, "ship", status="pending", wait_for_message=False)

    body = client.get(f"{URL}/{build.id}").json()

    assert body["url"] == f"{settings.HARBOR_BASE_URL}/builds/{build.id}/"
    assert body["url"] == build.absolute_url()
    assert {k: body[k] for k in ("id", "phid", "plan", "status", "generation", "initiator")} == {
        "id": build.id,
        "phid": build.phid,
        "plan": "deploy",
        "status": "building",
        "generation": 2,
        "initiator": "alice",
    }
    assert datetime.fromisoformat(body["date_created"]) == build.date_created
    assert datetime.fromisoformat(body["date_modified"]) == build.date_modified
    assert [t["id"] for t in body["targets"]] == [compile_target.id, ship.id]
    assert body["targets"][1] == {
        "id": ship.id,
        "phid": ship.phid,
        "name": "Run ship",
        "step": "ship",
        "status": "pending",
        "generation": 2,
        "attempt": 1,
        "failure": "",
        "superseded_by": "",
        "date_started": None,
        "date_completed": None,
    }


def test_get_shows_a_build_without_initiator_as_null(client, plan, buildable):
    build = make_build(plan, buildable)
    assert client.get(f"{URL}/{build.id}").json()["initiator"] is None


def test_get_takes_the_same_number_of_queries_however_many_targets(client, plan, buildable, user):
    small = make_build(plan, buildable, initiator=user)
    make_target(small, "compile")
    large = make_build(plan, buildable, initiator=user, generation=3)
    for generation in (1, 2, 3):
        for key in ("compile", "ship", "a", "b"):
            make_target(large, key, generation=generation)
    client.get(f"{URL}/{small.id}")  # records last_used, so later requests do not write it

    counts = []
    for build in (small, large):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"{URL}/{build.id}").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 3  # the token, the build with its joins, its targets


def test_get_an_unknown_build_answers_404_not_found(client):
    response = client.get(f"{URL}/424242")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "Not found."}


def test_an_unsupported_method_answers_405_in_the_error_shape(client, plan, buildable):
    build = make_build(plan, buildable)
    response = client.delete(f"{URL}/{build.id}")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_it_starts_a_build_without_a_buildable_on_an_empty_one(client, plan):
    response = client.post(URL, {"plan": "deploy"}, format="json")
    assert response.status_code == 201, response.content
    buildable = Build.objects.get().buildable
    assert (buildable.repository, buildable.ref, buildable.commit) == ("", "", "")


def test_a_parameter_name_with_a_trailing_newline_is_refused(client, plan):
    with assert_nothing_stored():
        response = client.post(URL, {"plan": "deploy", "parameters": {"env\n": "x"}}, format="json")
    assert response.status_code == 400
    assert "parameters" in response.json()["fields"]
