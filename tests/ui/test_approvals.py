"""Approvals in the web UI: the prompt and form on the build page for those allowed, the
approvals page, and deciding through the form."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from builds.models import BuildMessage
from tests.conftest import make_plan
from tests.ui.conftest import make_build, make_target

pytestmark = pytest.mark.django_db

CONFIG = {
    "prompt": "Ship release 1.2 to production?",
    "approvers": "releasers",
    "fields": [
        {"name": "environment", "type": "select", "options": ["staging", "prod"], "required": True},
        {"name": "reason", "type": "text"},
    ],
}


@pytest.fixture
def approval(buildable):
    plan = make_plan("gated", [{"key": "ok", "step_type": "approval", "config": CONFIG}])
    build = make_build(plan, buildable)
    return make_target(
        build, "ok", status="waiting", step_type="approval", config=CONFIG, wait_for_message=True
    )


@pytest.fixture
def releaser(user):
    user.groups.add(Group.objects.create(name="releasers"))
    return user


def test_the_build_page_shows_the_prompt_and_the_form_to_an_approver(signed_in, releaser, approval):
    html = signed_in.get(approval.build.get_absolute_url()).content.decode()
    assert "Ship release 1.2 to production?" in html
    assert reverse("approval-decide", args=[approval.pk]) in html
    assert '<option value="prod">prod</option>' in html and 'name="reason"' in html


def test_someone_not_allowed_sees_the_prompt_but_no_form(signed_in, approval):
    html = signed_in.get(approval.build.get_absolute_url()).content.decode()
    assert "Ship release 1.2 to production?" in html
    assert reverse("approval-decide", args=[approval.pk]) not in html
    assert "members of releasers may decide" in html
    response = signed_in.post(
        reverse("approval-decide", args=[approval.pk]),
        {"decision": "approve", "environment": "prod"},
    )
    assert response.status_code == 302
    assert not BuildMessage.objects.exists()


def test_the_approvals_page_lists_what_the_user_may_decide(signed_in, releaser, approval):
    html = signed_in.get(reverse("approval-list")).content.decode()
    assert "Ship release 1.2 to production?" in html and approval.build.get_absolute_url() in html


def test_the_approvals_page_leaves_out_what_the_user_may_not_decide(signed_in, approval):
    html = signed_in.get(reverse("approval-list")).content.decode()
    assert "No approval is waiting for you." in html


def test_approving_through_the_form_sends_a_pass_with_the_fields(signed_in, releaser, approval):
    response = signed_in.post(
        reverse("approval-decide", args=[approval.pk]),
        {"decision": "approve", "environment": "prod", "reason": "tested"},
    )
    assert response.status_code == 302
    message = BuildMessage.objects.get()
    assert (message.type, message.author, message.fields) == (
        "pass",
        releaser,
        {"environment": "prod", "reason": "tested"},
    )


def test_a_missing_required_field_is_said_and_nothing_stored(signed_in, releaser, approval):
    response = signed_in.post(
        reverse("approval-decide", args=[approval.pk]), {"decision": "approve"}, follow=True
    )
    assert "field &#x27;environment&#x27; is required" in response.content.decode()
    assert not BuildMessage.objects.exists()
