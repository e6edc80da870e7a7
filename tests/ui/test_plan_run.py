"""Running a plan by hand from its page: one build, initiated by the user."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from builds.models import Build, Buildable
from tests.ui.conftest import plan_of

pytestmark = pytest.mark.django_db


def run(client, plan, **data):
    return client.post(reverse("plan-run", args=[plan.id]), data)


def test_the_form_starts_a_build_for_the_buildable_it_names(signed_in, user):
    plan = plan_of(2)
    response = run(
        signed_in,
        plan,
        repository="https://example.com/x.git",
        ref="main",
        commit="b" * 40,
        parameters="flavour=vanilla\n\nsize = large",
    )
    build = Build.objects.get()
    assert response.status_code == 302 and response.url == build.get_absolute_url()
    assert build.plan == plan and build.initiator == user and build.status == "building"
    assert build.parameters == {"flavour": "vanilla", "size": "large"}
    assert (build.buildable.repository, build.buildable.ref) == (
        "https://example.com/x.git",
        "main",
    )


def test_parameters_that_are_not_name_value_lines_are_refused(signed_in):
    response = run(signed_in, plan_of(1), repository="r", parameters="just words")
    assert response.status_code == 400
    assert "Line 1 is not NAME=VALUE" in response.content.decode()
    assert not Build.objects.exists() and not Buildable.objects.exists()


def test_a_disabled_plan_cannot_be_run(signed_in):
    plan = plan_of(1)
    plan.status = "disabled"
    plan.save()
    response = run(signed_in, plan, repository="r")
    assert response.status_code == 400 and "disabled" in response.content.decode()
    assert not Build.objects.exists() and not Buildable.objects.exists()


def test_users_outside_the_run_group_get_no_form_and_403(signed_in):
    plan = plan_of(1)
    plan.run_group = Group.objects.create(name="deployers")
    plan.save()
    html = signed_in.get(reverse("plan-detail", args=[plan.id])).content.decode()
    assert "Start a build" not in html and "You may not run this plan" in html
    assert run(signed_in, plan, repository="r").status_code == 403
    assert not Build.objects.exists()


@pytest.mark.parametrize("name", ["BAD NAME", "Ü", "a b", "café"])
def test_parameter_names_the_api_refuses_are_refused_here_too(signed_in, name):
    response = run(signed_in, plan_of(1), repository="r", parameters=f"{name}=1")
    assert response.status_code == 400
    assert "[a-z0-9._/-]+" in response.content.decode()
    assert not Build.objects.exists() and not Buildable.objects.exists()
