"""``POST /api/v1/builds/<id>/commands`` with ``{"command": "rerun", "step": KEY}``."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from builds.models import Build, BuildMessage
from tests.api.conftest import assert_nothing_stored, make_build, make_target
from tests.conftest import make_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed_build(buildable, user):
    steps = [{"key": "compile"}, {"key": "test", "depends_on": ["compile"]}]
    build = make_build(make_plan("ci", steps), buildable, status="failed", initiator=user)
    make_target(build, "compile", status="passed")
    make_target(build, "test", status="failed", failure="failed")
    return build


def url(build) -> str:
    return f"/api/v1/builds/{build.pk}/commands"


def test_a_rerun_is_stored_as_a_command_naming_its_step(client, failed_build, user):
    response = client.post(url(failed_build), {"command": "rerun", "step": "test"}, format="json")
    assert response.status_code == 202, response.json()
    message = BuildMessage.objects.get(pk=response.json()["id"])
    assert (message.type, message.step_key, message.author) == ("rerun", "test", user)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"command": "rerun", "step": "nope"}, "receiver", "has no step 'nope'"),
        ({"command": "rerun"}, "step", "rerun needs the key of the step"),
        ({"command": "abort", "step": "test"}, "step", "only rerun takes a step"),
        ({"command": "rerun", "step": 7}, "step", ""),
    ],
)
def test_a_bad_rerun_answers_400_and_stores_nothing(client, failed_build, body, field, words):
    with assert_nothing_stored():
        response = client.post(url(failed_build), body, format="json")
    assert response.status_code == 400, response.json()
    assert words in str(response.json())


def test_a_rerun_of_a_step_still_running_answers_409_saying_why(client, failed_build):
    failed_build.targets.filter(step_key="test").update(status="waiting")
    Build.objects.filter(pk=failed_build.pk).update(status="building")
    with assert_nothing_stored():
        response = client.post(
            url(failed_build), {"command": "rerun", "step": "test"}, format="json"
        )
    assert response.status_code == 409
    assert 'step "test": it is still running' in str(response.json())


def test_a_rerun_of_a_paused_build_answers_409(client, failed_build):
    Build.objects.filter(pk=failed_build.pk).update(status="paused")
    response = client.post(url(failed_build), {"command": "rerun", "step": "test"}, format="json")
    assert response.status_code == 409
    assert "paused" in str(response.json())


def test_buildcommand_reruns_a_step(failed_build):
    out = StringIO()
    call_command("buildcommand", str(failed_build.pk), "rerun", "--step", "test", stdout=out)
    assert "Sent rerun to build" in out.getvalue()
    assert BuildMessage.objects.get(type="rerun").step_key == "test"


def test_buildcommand_refuses_an_unknown_step_and_stores_nothing(failed_build):
    with assert_nothing_stored(), pytest.raises(CommandError, match="has no step 'nope'"):
        call_command("buildcommand", str(failed_build.pk), "rerun", "--step", "nope")
    with pytest.raises(CommandError, match="--step is needed with rerun"):
        call_command("buildcommand", str(failed_build.pk), "rerun")


def test_a_verdict_to_a_superseded_attempt_answers_409_saying_so(client, buildable):
    plan = make_plan("ci-retry", [{"key": "ci", "wait_for_message": True}])
    build = make_build(plan, buildable)
    old = make_target(build, "ci", status="failed", failure="failed", superseded_by="retry")
    make_target(build, "ci", status="waiting", step_attempt=2, retries=1)
    with assert_nothing_stored():
        response = client.post(
            "/api/v1/sendmessage", {"receiver": old.phid, "type": "pass"}, format="json"
        )
    assert response.status_code == 409
    assert "superseded by a newer attempt (a retry)" in str(response.json())
