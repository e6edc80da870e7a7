"""``/api/v1/plans``: plans read, created and changed as YAML, each change kept as a version."""

import threading
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from builds import engine
from builds.models import Build, BuildPlan, BuildPlanVersion, BuildStep
from builds.plan_versions import save_plan_version
from tests.conftest import make_plan

pytestmark = pytest.mark.django_db

PLAN = """\
name: deploy
description: Ship it.
steps:
  - key: build
    type: sleep
    seconds: 0
  - key: ship
    type: http
    uri: "https://deploy.example.com/start"
    headers: {Authorization: "Bearer s3cret-value"}
    depends_on: [build]
"""
# Three problems: an unknown option, a missing required one, a missing dependency.
BROKEN = """\
name: deploy
steps:
  - key: ship
    type: http
    ur: "https://deploy.example.com/start"
    depends_on: [nowhere]
"""


def post_yaml(client, text: str, query: str = ""):
    return client.generic(
        "POST", "/api/v1/plans" + query, text.encode(), content_type="application/yaml"
    )


def put_yaml(client, plan: str, text: str, query: str = ""):
    return client.generic(
        "PUT", f"/api/v1/plans/{plan}{query}", text.encode(), content_type="application/yaml"
    )


@pytest.fixture
def admin(user):
    user.is_staff = True
    user.save()
    return user


def stored() -> tuple[int, int, int]:
    return BuildPlan.objects.count(), BuildStep.objects.count(), BuildPlanVersion.objects.count()


def test_staff_create_a_plan_from_yaml_as_its_first_version(client, admin):
    response = post_yaml(client, PLAN)

    assert response.status_code == 201, response.json()
    plan = BuildPlan.objects.get(name="deploy")
    assert list(plan.steps.order_by("sequence").values_list("key", flat=True)) == ["build", "ship"]
    version = plan.versions.get()
    assert (version.number, version.yaml, version.author) == (1, PLAN, admin)
    body = response.json()
    assert body["yaml"] == PLAN and body["version"]["number"] == 1
    assert body["version"]["author"] == "alice" and body["id"] == plan.pk


def test_a_plan_can_be_sent_as_json_too(client, admin):
    response = client.post("/api/v1/plans", {"yaml": PLAN}, format="json")
    assert response.status_code == 201
    assert BuildPlan.objects.filter(name="deploy").exists()


def test_a_refused_plan_lists_every_problem_and_stores_nothing(client, admin):
    response = post_yaml(client, BROKEN)

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "validation_error"
    problems = body["fields"]["yaml"]
    assert any("unknown option 'ur'" in p and "did you mean 'uri'" in p for p in problems)
    assert any("option 'uri' is required" in p for p in problems)
    assert any("'nowhere', which is not a step" in p for p in problems)
    assert stored() == (0, 0, 0)


def test_yaml_that_does_not_parse_is_a_400(client, admin):
    response = post_yaml(client, "name: [unclosed\n")
    assert response.status_code == 400
    assert "invalid YAML" in response.json()["fields"]["yaml"][0]
    assert stored() == (0, 0, 0)


def test_validate_checks_without_saving(client, user):
    ok = post_yaml(client, PLAN, "?validate=true")
    refused = post_yaml(client, BROKEN, "?validate=true")

    assert ok.status_code == 200 and ok.json() == {"valid": True, "name": "deploy"}
    assert refused.status_code == 400 and len(refused.json()["fields"]["yaml"]) == 3
    assert stored() == (0, 0, 0)


def test_a_validate_given_without_a_value_is_refused_rather_than_saving(client, admin):
    response = post_yaml(client, PLAN, "?validate")
    assert response.status_code == 400
    assert "validate" in response.json()["fields"]
    assert stored() == (0, 0, 0)


def test_a_user_neither_staff_nor_plan_admin_may_not_create_or_change_plans(client, user):
    response = post_yaml(client, PLAN)
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert stored() == (0, 0, 0)

    save_plan_version(PLAN)
    before = stored()
    assert put_yaml(client, "deploy", PLAN.replace("Ship it.", "Changed")).status_code == 403
    assert stored() == before
    assert BuildPlan.objects.get().description == "Ship it."


def test_members_of_the_plan_admins_group_may_change_plans(client, user, settings):
    settings.HARBOR_PLAN_ADMINS = "plan-admins"
    user.groups.add(Group.objects.create(name="plan-admins"))
    assert post_yaml(client, PLAN).status_code == 201


def test_a_group_not_named_by_the_setting_does_not_let_its_members(client, user, settings):
    settings.HARBOR_PLAN_ADMINS = "plan-admins"
    user.groups.add(Group.objects.create(name="developers"))
    assert post_yaml(client, PLAN).status_code == 403


def test_creating_a_plan_that_exists_is_a_conflict(client, admin):
    save_plan_version(PLAN)
    response = post_yaml(client, PLAN.replace("Ship it.", "Other"))
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert BuildPlan.objects.get().description == "Ship it."


def test_put_changes_the_plan_and_keeps_the_next_version(client, admin):
    plan, _ = save_plan_version(PLAN)
    changed = PLAN.replace("seconds: 0", "seconds: 1")

    response = put_yaml(client, "deploy", changed)

    assert response.status_code == 200, response.json()
    assert response.json()["version"]["number"] == 2
    assert plan.steps.get(key="build").config == {"seconds": 1}
    assert list(plan.versions.order_by("number").values_list("number", "yaml")) == [
        (1, PLAN),
        (2, changed),
    ]
    assert put_yaml(client, str(plan.pk), changed).json()["version"]["number"] == 2  # unchanged


def test_put_refuses_renaming_unknown_plans_and_bad_yaml(client, admin):
    save_plan_version(PLAN)
    before = stored()

    renamed = put_yaml(client, "deploy", PLAN.replace("name: deploy", "name: other"))
    assert renamed.status_code == 400
    assert "cannot be renamed" in renamed.json()["fields"]["yaml"][0]
    assert put_yaml(client, "nothing", PLAN).status_code == 404
    assert put_yaml(client, "deploy", BROKEN).status_code == 400
    assert put_yaml(client, "deploy", BROKEN, "?validate=1").status_code == 400
    assert stored() == before


def test_get_answers_a_plan_by_id_or_name_with_its_yaml(client, admin):
    plan, _ = save_plan_version(PLAN)
    by_name = client.get("/api/v1/plans/deploy").json()
    by_id = client.get(f"/api/v1/plans/{plan.pk}").json()
    assert by_name == by_id
    assert by_name["yaml"] == PLAN and by_name["version"]["author"] is None
    assert client.get("/api/v1/plans/nothing").status_code == 404


def test_users_who_may_not_change_plans_read_the_yaml_masked(client, user):
    save_plan_version(PLAN)
    text = client.get("/api/v1/plans/deploy").json()["yaml"]
    assert "s3cret-value" not in text and "********" in text and "deploy.example.com" in text


def test_a_plan_never_versioned_answers_yaml_that_imports_to_the_same_plan(client, admin):
    make_plan("old", [{"key": "a", "config": {"seconds": 2}}, {"key": "b", "depends_on": ["a"]}])
    body = client.get("/api/v1/plans/old").json()
    assert body["version"] is None
    assert put_yaml(client, "old", body["yaml"]).status_code == 200
    plan = BuildPlan.objects.get(name="old")
    assert [(s.key, s.config, s.depends_on) for s in plan.steps.order_by("sequence")] == [
        ("a", {"seconds": 2}, []),
        ("b", {}, ["a"]),
    ]


def test_a_never_versioned_plans_yaml_keeps_its_notify_webhooks(client, admin, settings):
    settings.HARBOR_CREDENTIALS = {"chat-hook": {"type": "bearer", "token": "s"}}
    hooks = [
        {"url": "https://chat.example.com/h", "events": ["build.failed"], "secret": "chat-hook"}
    ]
    make_plan("old", [{"key": "a"}], notify=hooks)
    text = client.get("/api/v1/plans/old").json()["yaml"]
    assert put_yaml(client, "old", text).status_code == 200
    assert BuildPlan.objects.get(name="old").notify == hooks


def test_the_list_shows_every_plan_with_its_latest_version(client, user):
    save_plan_version(PLAN)
    save_plan_version(PLAN.replace("Ship it.", "Again"))
    save_plan_version(PLAN.replace("deploy", "other"))
    body = client.get("/api/v1/plans").json()
    assert [(p["name"], p["version"]["number"]) for p in body] == [("deploy", 2), ("other", 1)]


def test_a_build_records_the_version_it_started_from_and_its_page_links_it(
    client, admin, buildable
):
    plan, first = save_plan_version(PLAN)
    build = engine.start_build(plan, buildable)
    _, second = save_plan_version(PLAN.replace("Ship it.", "Changed"))
    later = engine.start_build(BuildPlan.objects.get(), buildable)

    assert Build.objects.get(pk=build.pk).plan_version == first
    assert Build.objects.get(pk=later.pk).plan_version == second
    client.force_login(admin)  # the web page, signed in
    page = client.get(reverse("build-detail", args=[build.pk]))
    assert f'href="{first.get_absolute_url()}"' in page.content.decode()


def test_importplan_keeps_a_version_without_an_author(tmp_path: Path):
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    out = StringIO()
    call_command("importplan", str(path), stdout=out)
    call_command("importplan", str(path), stdout=out)  # the same text: no new version
    version = BuildPlanVersion.objects.get()
    assert (version.number, version.author, version.yaml) == (1, None, PLAN)
    assert out.getvalue().count("version 1") == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_changes_of_a_plan_get_one_version_number_each():
    save_plan_version(PLAN)
    barrier = threading.Barrier(4)
    errors = []

    def change(index: int) -> None:
        try:
            barrier.wait()
            save_plan_version(PLAN.replace("Ship it.", f"change {index}"))
        except Exception as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=change, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    numbers = sorted(BuildPlanVersion.objects.values_list("number", flat=True))
    assert numbers == [1, 2, 3, 4, 5]
    latest = BuildPlanVersion.objects.get(number=5)
    assert BuildPlan.objects.get().description in latest.yaml
