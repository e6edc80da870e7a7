"""The admin is for looking: staff see engine-owned rows but cannot add, change or delete
them there; plans stay editable."""

import pytest
from django.urls import reverse

from accounts.models import ApiToken
from accounts.tokens import revoke_token
from builds import engine
from builds.models import BuildPlan, BuildTarget
from tests.admin.conftest import ENGINE_OWNED

pytestmark = pytest.mark.django_db

by_name = {"ids": lambda model: model.__name__}


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", ENGINE_OWNED, **by_name)
def test_staff_see_every_engine_owned_row_without_a_save_button(admin_client, engine_rows, model):
    row = engine_rows[model]
    assert admin_client.get(admin_url(model, "changelist")).status_code == 200
    page = admin_client.get(admin_url(model, "change", row.pk))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content


@pytest.mark.parametrize("model", ENGINE_OWNED, **by_name)
def test_staff_can_neither_add_change_nor_delete_an_engine_owned_row(
    admin_client, engine_rows, model
):
    row = engine_rows[model]
    before = model.objects.filter(pk=row.pk).values().get()
    assert admin_client.get(admin_url(model, "add")).status_code == 403
    assert admin_client.post(admin_url(model, "change", row.pk), {}).status_code == 403
    assert admin_client.post(admin_url(model, "delete", row.pk), {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=row.pk).values().get() == before


def test_posting_a_passed_targets_change_form_changes_nothing(admin_client, engine_rows, buildable):
    target = engine_rows[BuildTarget]
    other_build = engine.start_build(target.build.plan, buildable)
    form = {
        "build": other_build.pk,
        "step_key": "renamed",
        "generation": 7,
        "name": target.name,
        "step_type": target.step_type,
        "config": "{}",
        "variables": "{}",
        "wait_for_message": "on",
        "date_completed_0": "",
        "date_completed_1": "",
    }
    answer = admin_client.post(admin_url(BuildTarget, "change", target.pk), form)
    assert answer.status_code == 403
    after = BuildTarget.objects.get(pk=target.pk)
    assert (after.status, after.step_key, after.generation) == ("passed", "ci", 1)
    assert (after.build_id, after.date_completed) == (target.build_id, target.date_completed)


def test_staff_still_edit_a_plans_description(admin_client, engine_rows):
    plan = BuildPlan.objects.get(name="admin-rows")
    form = {"name": plan.name, "description": "edited", "status": "active", "behaviors": "{}"}
    answer = admin_client.post(admin_url(BuildPlan, "change", plan.pk), form)
    assert answer.status_code == 302
    assert BuildPlan.objects.get(pk=plan.pk).description == "edited"


def test_a_token_form_opened_before_a_revoke_cannot_make_the_token_active_again(admin_client, user):
    token = ApiToken.issue(user, name="ci")[0]
    form_as_opened = {"user": user.pk, "name": "renamed", "revoked_0": "", "revoked_1": ""}
    assert revoke_token(user, token.pk)
    answer = admin_client.post(admin_url(ApiToken, "change", token.pk), form_as_opened)
    assert answer.status_code == 302
    after = ApiToken.objects.get(pk=token.pk)
    assert (after.name, after.revoked is not None) == ("renamed", True)


def test_staff_revoke_tokens_with_the_admin_action(admin_client, user):
    active, revoked = ApiToken.issue(user)[0], ApiToken.issue(user)[0]
    revoke_token(user, revoked.pk)
    first_revocation = ApiToken.objects.get(pk=revoked.pk).revoked
    selected = {"action": "revoke_tokens", "_selected_action": [active.pk, revoked.pk]}
    assert admin_client.post(admin_url(ApiToken, "changelist"), selected).status_code == 302
    assert ApiToken.objects.get(pk=active.pk).revoked is not None
    assert ApiToken.objects.get(pk=revoked.pk).revoked == first_revocation
