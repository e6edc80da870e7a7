"""The admin is for looking: staff see engine-owned rows but cannot add, change or delete
them there; plans stay editable."""

import pytest
from django.urls import reverse

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
