"""Deciding an approval through REST and Conduit: fields checked, deciders permitted."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from builds.models import BuildMessage, BuildTarget
from tests.api.conftest import assert_nothing_stored, make_build
from tests.conduit.conftest import Conduit
from tests.conftest import make_plan

pytestmark = pytest.mark.django_db

CONFIG = {
    "prompt": "Deploy?",
    "approvers": "releasers",
    "fields": [
        {"name": "environment", "type": "select", "options": ["staging", "prod"], "required": True}
    ],
}


@pytest.fixture
def approval(buildable) -> BuildTarget:
    plan = make_plan("gated", [{"key": "ok", "step_type": "approval", "config": CONFIG}])
    build = make_build(plan, buildable)
    return BuildTarget.objects.create(
        build=build,
        step_key="ok",
        generation=1,
        name="Approve",
        step_type="approval",
        config=CONFIG,
        wait_for_message=True,
        status="waiting",
    )


@pytest.fixture
def approver(user):
    user.groups.add(Group.objects.create(name="releasers"))
    return user


def send(client, target, fields, message_type="pass"):
    body = {"receiver": target.phid, "type": message_type, "fields": fields}
    return client.post("/api/v1/sendmessage", body, format="json")


def test_an_approver_approves_with_fields_through_rest(client, approval, approver):
    response = send(client, approval, {"environment": "prod"})
    assert response.status_code == 202, response.json()
    assert BuildMessage.objects.get().fields == {"environment": "prod"}


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({}, "field 'environment' is required"),
        ({"environment": "moon"}, "must be one of staging, prod"),
        ({"environment": "prod", "size": "xl"}, "unknown field 'size'"),
        ({"environment": 3}, ""),
    ],
)
def test_bad_fields_answer_400_and_store_nothing(client, approval, approver, fields, words):
    with assert_nothing_stored():
        response = send(client, approval, fields)
    assert response.status_code == 400, response.json()
    assert words in str(response.json())


def test_someone_not_allowed_gets_403_and_nothing_is_stored(client, approval):
    with assert_nothing_stored():
        response = send(client, approval, {"environment": "prod"})
    assert response.status_code == 403
    assert "releasers" in str(response.json())


def test_an_approver_decides_through_conduit(api_token, approval, approver):
    conduit = Conduit(Client(), api_token)
    params = {"receiver": approval.phid, "type": "pass", "fields": {"environment": "staging"}}
    answer = conduit("harbormaster.sendmessage", **params)
    assert answer["error_code"] is None, answer
    assert BuildMessage.objects.get().fields == {"environment": "staging"}


def test_conduit_refuses_an_option_not_offered(api_token, approval, approver):
    conduit = Conduit(Client(), api_token)
    with assert_nothing_stored():
        answer = conduit(
            "harbormaster.sendmessage",
            receiver=approval.phid,
            type="pass",
            fields={"environment": "moon"},
        )
    assert answer["error_code"] == "ERR-CONDUIT-CORE"
    assert "must be one of staging, prod" in answer["error_info"]
