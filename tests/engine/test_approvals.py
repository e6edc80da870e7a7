"""Approval steps: a person's decision, as a message with fields, checked and permitted."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from builds import engine
from builds.models import BuildMessage, BuildTarget, StatusEvent, UnitResult
from builds.permissions import NotPermitted
from builds.plans import PlanError, import_plan
from tests.engine.conftest import waiting_step

pytestmark = pytest.mark.django_db

FIELDS = [
    {
        "name": "environment",
        "type": "select",
        "options": ["staging", "production"],
        "required": True,
    },
    {"name": "reason", "type": "text"},
]


def approval_step(key: str = "approve", **config) -> dict:
    config = {"prompt": "Deploy?", "fields": FIELDS, "approvers": "releasers", **config}
    return {"key": key, "step_type": "approval", "wait_for_message": True, "config": config}


@pytest.fixture
def approver(db):
    user = get_user_model().objects.create_user("ann")
    user.groups.add(Group.objects.get_or_create(name="releasers")[0])
    return user


@pytest.fixture
def outsider(db):
    return get_user_model().objects.create_user("otto")


def decide(driver, key, message_type, author, fields):
    return engine.receive_message(
        driver.target(key).phid, message_type, author=author, fields=fields
    )


def waiting_approval(start, *more):
    driver = start([approval_step(), *more])
    driver.run("approve")
    assert driver.target("approve").status == "waiting"
    return driver


def test_an_approver_approves_with_fields_and_the_timeline_records_who_and_what(start, approver):
    driver = waiting_approval(start)
    fields = {"environment": "production", "reason": "release 1.2"}
    message = decide(driver, "approve", "pass", approver, fields).message
    driver.update()
    assert driver.target("approve").status == "passed"
    assert message.fields == fields
    event = StatusEvent.objects.get(target=driver.target("approve"), to_status="passed")
    assert (event.actor, event.message) == (approver, message)
    assert event.detail == "with environment=production, reason=release 1.2"


def test_a_decline_fails_the_target_without_its_required_fields(start, approver):
    driver = waiting_approval(start)
    decide(driver, "approve", "fail", approver, {"reason": "not today"})
    driver.update()
    assert driver.target("approve").status == "failed"
    assert driver.refresh().status == "failed"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({}, "field 'environment' is required"),
        ({"environment": "  "}, "field 'environment' is required"),
        ({"environment": "moon"}, "must be one of staging, production, not 'moon'"),
        ({"environment": "staging", "colour": "red"}, "unknown field 'colour'"),
    ],
)
def test_bad_fields_are_refused_and_nothing_is_stored(start, approver, fields, words):
    driver = waiting_approval(start)
    with pytest.raises(engine.InvalidMessage, match=words):
        decide(driver, "approve", "pass", approver, fields)
    assert not BuildMessage.objects.exists()


def test_someone_outside_the_approvers_may_not_decide(start, outsider):
    driver = waiting_approval(start)
    with pytest.raises(NotPermitted, match="members of the group 'releasers'"):
        decide(driver, "approve", "pass", outsider, {"environment": "staging"})
    assert not BuildMessage.objects.exists()


def test_staff_may_always_decide(start, outsider):
    outsider.is_staff = True
    outsider.save()
    driver = waiting_approval(start)
    decide(driver, "approve", "pass", outsider, {"environment": "staging"})


def test_a_machine_holding_the_target_secret_may_not_decide(start):
    driver = waiting_approval(start)
    holder = engine_secret_holder(driver.target("approve"))
    with pytest.raises(NotPermitted):
        decide(driver, "approve", "pass", holder, {"environment": "staging"})


def engine_secret_holder(target):
    from builds.permissions import TargetSecretHolder

    return TargetSecretHolder(target.phid)


def test_fields_to_a_target_that_is_no_approval_are_refused(start, approver):
    driver = start([waiting_step("ci")])
    driver.run("ci")
    with pytest.raises(engine.InvalidMessage, match="only be sent to an approval"):
        decide(driver, "ci", "pass", approver, {"environment": "staging"})


def test_later_steps_read_the_approved_values_as_variables(start, approver):
    later = waiting_step(
        "deploy", depends_on=["approve"], config={"to": "${approval.approve.environment}"}
    )
    driver = waiting_approval(start, later)
    decide(driver, "approve", "pass", approver, {"environment": "production"})
    driver.update()
    variables = driver.target("deploy").variables
    assert variables["approval.approve.environment"] == "production"
    assert "approval.approve.reason" not in variables  # left blank


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"fields": [{"name": "env", "type": "select"}]}, "a select needs options"),
        ({"fields": [{"name": "env", "type": "radio"}]}, "type must be text or select"),
        ({"fields": [{"name": "env", "colour": "red"}]}, r"unknown key\(s\) colour"),
        ({"fields": [{"name": "Env"}]}, r"the name must match"),
        ({"fields": [{"name": "a"}, {"name": "a"}]}, "appears twice"),
        ({"fields": "env"}, "must be a list of fields"),
        ({"prompt": ""}, "'prompt' must not be empty"),
        ({"aprovers": "x"}, r"did you mean 'approvers'"),
    ],
)
def test_a_plan_with_bad_approval_fields_is_refused(config, words):
    step = {"key": "ok", "type": "approval", "prompt": "Deploy?", **config}
    with pytest.raises(PlanError, match=words):
        import_plan({"name": "gated", "steps": [step]})


def test_an_imported_approval_step_always_waits_and_its_variables_are_known():
    plan = import_plan(
        {
            "name": "gated",
            "steps": [
                {"key": "ok", "type": "approval", "prompt": "Deploy?", "fields": FIELDS},
                {"key": "go", "type": "sleep", "depends_on": ["ok"], "seconds": "${approval.ok.x}"},
            ],
        }
    )
    assert plan.steps.get(key="ok").wait_for_message is True
    assert not UnitResult.objects.exists() and BuildTarget.objects.count() == 0
