"""A plan's run group decides who may start its builds and send messages to its builds and
targets; staff may do anything; refusals are 403 with nothing stored."""

import pytest

from builds import engine, permissions
from builds.models import Build, BuildMessage
from tests.api.conftest import assert_nothing_stored
from tests.api.test_sendmessage import assert_error, message
from tests.permissions.conftest import client_for, make_build

SEND = "/api/v1/sendmessage"


def test_an_outsider_forging_a_pass_is_refused_with_403_and_nothing_stored(
    outsider, release_target
):
    forged = message(release_target, idempotency_key="forged")
    with assert_nothing_stored():
        response = client_for(outsider).post(SEND, forged, format="json")
    body = assert_error(response, 403, "permission_denied", "releasers")
    assert "release" in body["detail"]
    release_target.refresh_from_db()
    assert release_target.status == "waiting"


def test_a_member_of_the_run_group_may_send_the_verdict(member, release_target):
    response = client_for(member).post(SEND, message(release_target), format="json")
    assert response.status_code == 202, response.content
    assert BuildMessage.objects.get().author == member


def test_staff_may_send_to_any_plan(staff, release_target):
    response = client_for(staff).post(SEND, message(release_target), format="json")
    assert response.status_code == 202, response.content


def test_any_signed_in_user_may_message_a_plan_without_a_group(outsider, waiting_target):
    response = client_for(outsider).post(SEND, message(waiting_target), format="json")
    assert response.status_code == 202, response.content


@pytest.mark.parametrize("command", ["abort", "pause", "restart"])
def test_an_outsider_may_not_command_a_build_of_the_plan(outsider, release_target, command):
    payload = {"receiver": release_target.build.phid, "type": command}
    with assert_nothing_stored():
        response = client_for(outsider).post(SEND, payload, format="json")
    assert_error(response, 403, "permission_denied", "releasers")


def test_a_repeated_key_does_not_show_an_outsider_the_first_message(
    member, outsider, release_target
):
    client_for(member).post(SEND, message(release_target, idempotency_key="k"), format="json")
    with assert_nothing_stored():
        response = client_for(outsider).post(
            SEND, message(release_target, idempotency_key="k"), format="json"
        )
    assert_error(response, 403, "permission_denied")


def test_a_buildable_command_reaches_only_the_builds_the_author_may_message(
    outsider, release_plan, waiting_plan, buildable
):
    restricted = make_build(release_plan, buildable)
    open_build = make_build(waiting_plan, buildable)
    response = client_for(outsider).post(
        SEND, {"receiver": buildable.phid, "type": "pause"}, format="json"
    )
    assert response.status_code == 202, response.content
    assert list(BuildMessage.objects.values_list("build_id", flat=True)) == [open_build.pk]
    assert not BuildMessage.objects.filter(build=restricted).exists()


def test_a_buildable_command_is_403_when_the_author_may_message_none_of_its_builds(
    outsider, release_plan, buildable
):
    make_build(release_plan, buildable)
    with assert_nothing_stored():
        response = client_for(outsider).post(
            SEND, {"receiver": buildable.phid, "type": "pause"}, format="json"
        )
    assert_error(response, 403, "permission_denied")


START = "/api/v1/builds"


def test_an_outsider_may_not_start_a_build_of_the_plan(outsider, release_plan):
    with assert_nothing_stored():
        response = client_for(outsider).post(
            START, {"plan": "release", "buildable": {"commit": "d" * 40}}, format="json"
        )
    assert_error(response, 403, "permission_denied", "releasers")


@pytest.mark.parametrize("who", ["member", "staff"])
def test_members_and_staff_may_start_a_build_of_the_plan(request, release_plan, who):
    response = client_for(request.getfixturevalue(who)).post(
        START, {"plan": "release", "buildable": {"commit": "d" * 40}}, format="json"
    )
    assert response.status_code == 201, response.content
    assert Build.objects.get().initiator.username == request.getfixturevalue(who).username


def test_an_inactive_member_may_do_nothing(member, release_plan):
    member.is_active = False
    assert not permissions.can_run(member, release_plan)


def test_harbor_itself_may_message_any_build(release_target):
    """Commands and the engine's own callers pass no author."""
    receipt = engine.receive_message(release_target.phid, "pass")
    assert receipt.created and receipt.message.author is None


def test_the_engine_refuses_an_outsider_whatever_the_entry_point(outsider, release_target):
    with pytest.raises(permissions.NotPermitted), assert_nothing_stored():
        engine.receive_message(release_target.phid, "pass", author=outsider)
