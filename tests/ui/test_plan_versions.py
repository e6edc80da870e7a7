"""The plan page without a shell: every step's settings (masked), the plan's history, a diff
between versions, and uploading a new version for those allowed."""

import pytest
from django.urls import reverse

from builds.models import BuildPlan, BuildPlanVersion
from builds.plan_versions import save_plan_version

pytestmark = pytest.mark.django_db

PLAN = """\
name: deploy
steps:
  - key: ship
    type: http
    uri: "https://deploy.example.com/start?api_token=tok-123"
    headers:
      Authorization: Bearer s3cret-value
      Accept: application/json
"""


@pytest.fixture
def plan():
    return save_plan_version(PLAN)[0]


@pytest.fixture
def staff(signed_in, user):
    user.is_staff = True
    user.save()
    return signed_in


def page(client, plan) -> str:
    response = client.get(reverse("plan-detail", args=[plan.pk]))
    assert response.status_code == 200
    return response.content.decode()


def upload(client, plan, text: str):
    return client.post(reverse("plan-upload", args=[plan.pk]), {"yaml": text})


def test_the_plan_page_shows_each_steps_settings_with_secrets_masked(signed_in, plan):
    html = page(signed_in, plan)
    assert "headers.Accept" in html and "application/json" in html
    assert "deploy.example.com/start?api_token=********" in html
    assert "s3cret-value" not in html and "tok-123" not in html


def test_the_plan_page_lists_its_versions_and_offers_the_upload_only_to_those_allowed(
    signed_in, user, plan
):
    html = page(signed_in, plan)
    assert BuildPlanVersion.objects.get().get_absolute_url() in html
    assert "Upload a new version" not in html
    user.is_staff = True
    user.save()
    assert "Upload a new version" in page(signed_in, plan)


def test_an_uploaded_version_is_saved_by_its_author_and_its_page_shows_the_diff(staff, user, plan):
    changed = PLAN.replace("Accept: application/json", "Accept: text/plain")
    response = upload(staff, plan, changed)

    version = BuildPlanVersion.objects.get(number=2)
    assert response.status_code == 302 and response.url == version.get_absolute_url()
    assert version.author == user and version.yaml == changed
    html = staff.get(version.get_absolute_url()).content.decode()
    assert '<span class="diff-del">-      Accept: application/json</span>' in html
    assert '<span class="diff-add">+      Accept: text/plain</span>' in html
    assert "s3cret-value" not in html and "tok-123" not in html


def test_a_diff_against_any_other_version_can_be_asked_for(staff, plan):
    upload(staff, plan, PLAN.replace("Accept: application/json", "Accept: a"))
    upload(staff, plan, PLAN.replace("Accept: application/json", "Accept: b"))
    url = BuildPlanVersion.objects.get(number=3).get_absolute_url()
    html = staff.get(url, {"against": 1}).content.decode()
    assert "Changes from version 1" in html and "-      Accept: application/json" in html


def test_a_refused_upload_shows_every_problem_and_saves_nothing(staff, plan):
    broken = PLAN.replace("uri:", "ur:").replace("type: http", "type: http\n    depends_on: [x]")
    response = upload(staff, plan, broken)

    assert response.status_code == 400
    html = response.content.decode()
    assert "unknown option &#x27;ur&#x27;" in html and "is required" in html
    assert "which is not a step" in html
    assert BuildPlanVersion.objects.count() == 1
    assert BuildPlan.objects.get().steps.get().config["uri"].startswith("https://deploy")


def test_a_user_who_may_not_change_plans_cannot_upload(signed_in, plan):
    response = upload(signed_in, plan, PLAN.replace("application/json", "text/plain"))
    assert response.status_code == 403
    assert BuildPlanVersion.objects.count() == 1


def test_an_unknown_version_is_a_404(signed_in, plan):
    assert signed_in.get(reverse("plan-version", args=[plan.pk, 9])).status_code == 404


def test_the_admin_shows_versions_read_only_with_secrets_masked(staff, user, plan):
    user.is_superuser = True
    user.save()
    version = BuildPlanVersion.objects.get()
    url = reverse("admin:builds_buildplanversion_change", args=[version.pk])
    html = staff.get(url).content.decode()
    assert "Authorization: ********" in html and "s3cret-value" not in html
    assert staff.post(url, {}).status_code == 403
    assert staff.get(reverse("admin:builds_concurrencygroup_changelist")).status_code == 200
